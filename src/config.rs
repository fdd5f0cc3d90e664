//! Typed settings, layered: the embedded `config/default.toml`, then
//! `config/$TOCSIN_ENV.toml`, then `TOCSIN__SECTION__KEY` environment variables.
//!
//! Loading fails with a message that names the key and what is wrong with it; nothing
//! downstream re-validates raw values. Settings reach code through `AppState`, never a
//! global.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

/// The default configuration, compiled in so the binary starts anywhere.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub storage: StorageSettings,
    pub log: LogSettings,
    pub messages: MessageSettings,
    pub prices: Prices,
    pub ratelimit: RateLimitSettings,
    pub blobs: BlobSettings,
    pub directory: DirectorySettings,
    pub chat: ChatSettings,
    pub devices: DeviceSettings,
    pub callbacks: CallbackSettings,
    pub roles: RoleSettings,
}

/// What this node does. Several nodes on one PostgreSQL database may each take some.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSettings {
    /// The gateway API: sends, lookups, blobs, credits, message status.
    pub api: bool,
    /// What devices reach: `/chat`, the directory, blob downloads.
    pub chat: bool,
    /// Delivering the callback outbox.
    pub callbacks: bool,
    /// Expiry, retention, stale devices, forgotten idempotency keys.
    pub housekeeping: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub http_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    /// The bearer token `/metrics` asks for; empty: none.
    pub metrics_token: String,
    /// Reverse proxies (CIDR ranges or addresses) whose forwarding headers name the client.
    pub trusted_proxies: Vec<String>,
    /// Connections one address may hold open at once; 0: no cap.
    pub connections_per_ip: usize,
    /// Deadline for a form or JSON body, in seconds.
    pub body_timeout_secs: u64,
    /// 0 = one worker per core.
    pub workers: usize,
    pub shutdown_grace_secs: u64,
    /// PEM certificate chain (leaf first) and PEM private key: with both set, the API
    /// listener serves HTTPS (and `/chat` WSS). Both empty: plain HTTP.
    pub tls_cert_file: String,
    pub tls_key_file: String,
    /// Serve plain HTTP on an address other than loopback (behind a TLS-terminating
    /// proxy). Without it such a bind is refused at start.
    pub allow_plain_http: bool,
}

impl ServerSettings {
    /// Whether the API listener serves HTTPS.
    pub fn tls_enabled(&self) -> bool {
        !self.tls_cert_file.is_empty()
    }

    /// Refuses to serve plain HTTP on an address other than loopback, unless
    /// `allow_plain_http` says a TLS-terminating proxy is in front: API secrets and
    /// device logins would cross the network in the clear. Checked when serving starts,
    /// not when the configuration loads, so `tocsin admin` works with any bind.
    pub fn check_plain_http(&self) -> Result<(), ConfigError> {
        let ip = self.http_addr.ip().to_canonical();
        if self.tls_enabled() || self.allow_plain_http || ip.is_loopback() {
            return Ok(());
        }
        Err(invalid(
            "server.http_addr",
            format!(
                "{} is not a loopback address, and plain HTTP there would carry API secrets \
                 in the clear; set server.tls_cert_file and server.tls_key_file to serve \
                 HTTPS, or server.allow_plain_http = true behind a TLS-terminating proxy",
                self.http_addr
            ),
        ))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    pub data_dir: PathBuf,
    pub url: String,
    pub url_file: String,
    pub max_connections: NonZeroU32,
    pub busy_timeout_ms: u64,
    pub allow_unsafe_durability: bool,
    /// SQLite zeroes what it deletes (acked boxes and nonces).
    pub secure_delete: bool,
    pub data_key_file: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageSettings {
    pub ttl_secs: u64,
    pub idempotency_window_secs: u64,
    /// On SQLite, the most idempotency keys held in memory; beyond it the oldest are
    /// forgotten before their window ends.
    pub idempotency_max_keys: u64,
    /// How long a message's status events are kept once it has left the queue.
    pub status_retention_secs: u64,
}

impl MessageSettings {
    /// The shortest TTL a sender may ask for.
    pub const MIN_TTL: Duration = Duration::from_secs(10);

    /// How long a message waits for its devices unless its sender asked for less.
    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_secs)
    }
}

/// Identity creation by devices.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorySettings {
    /// Anyone may create an identity (rate-limited per address). Off by default: a device
    /// needs an invite code or the enrollment token.
    pub open_enrollment: bool,
    /// Lifetime of an invite made without `--expires`, in seconds.
    pub invite_ttl_secs: u64,
    pub enrollment_token: String,
    pub enrollment_token_file: String,
    pub identities_per_ip_per_hour: u32,
}

/// The chat server devices connect to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatSettings {
    pub server_key_file: String,
    pub idle_timeout_secs: u64,
    /// A connected session looks at the store this often even when nothing woke it.
    pub recheck_secs: u64,
    /// New messages the hub holds per session (SQLite) before the session goes back to
    /// the store for them.
    pub inbox_messages: usize,
    /// Frames (acks aside) one identity's devices may send per second, and in a burst.
    pub device_frames_per_second: u32,
    pub device_frames_burst: u32,
    /// Bytes of frames one identity's devices may send per second, and in a burst.
    pub device_bytes_per_second: u32,
    pub device_bytes_burst: u32,
    /// Sessions one identity may hold open at once.
    pub sessions_per_identity: usize,
    /// Devices one identity may register.
    pub devices_per_identity: u32,
    /// Message IDs one receipt to a basic-mode gateway ID may name.
    pub receipt_message_ids: usize,
}

/// Devices registered by identities.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSettings {
    /// A device not seen for this long (no login, not connected) is dropped and no longer
    /// holds its identity's messages; 0: never.
    pub stale_after_secs: u64,
}

impl DeviceSettings {
    /// The shortest `stale_after_secs` other than 0: a device offline for a night or a
    /// flight must not lose its place.
    pub const MIN_STALE_AFTER: Duration = Duration::from_secs(3600);

    /// How long a device may go unseen before it is dropped; `None`: never.
    pub fn stale_after(&self) -> Option<Duration> {
        (self.stale_after_secs > 0).then(|| Duration::from_secs(self.stale_after_secs))
    }
}

/// Delivery of replies and receipts to customers' callback URLs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackSettings {
    pub timeout_secs: u64,
    pub per_url_concurrency: usize,
    pub retry_schedule_secs: Vec<u64>,
    pub horizon_secs: u64,
    pub sweep_secs: u64,
    pub allowed_ranges: Vec<String>,
    /// Ports callbacks may use; empty: any.
    pub allowed_ports: Vec<u16>,
    /// Callbacks go through this HTTP(S) proxy; empty: directly (proxies of the
    /// environment are never used).
    pub proxy_url: String,
    /// How long a dead-lettered entry is kept (for `tocsin admin`) before it is purged.
    pub dead_retention_secs: u64,
    /// Replies and receipts from one sender waiting for a gateway ID's callback, at most.
    pub pending_per_sender: u32,
    /// Replies and receipts waiting for one gateway ID's callback, at most.
    pub pending_per_gateway: u32,
}

/// Limits for uploaded blobs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobSettings {
    pub max_bytes: u64,
    pub ttl_secs: u64,
    /// Bytes all stored blobs may take together; 0: no bound.
    pub max_total_bytes: u64,
    /// Deadline for an upload's body, in seconds.
    pub upload_timeout_secs: u64,
}

/// Request budgets; a rate of 0 disables that limiter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub per_ip_per_second: u32,
    pub per_ip_burst: u32,
    pub per_gateway_per_second: u32,
    pub per_gateway_burst: u32,
    pub auth_failures_per_minute: u32,
    pub auth_failures_per_gateway_per_minute: u32,
    /// Phone and e-mail hashes one gateway ID may look up per day, found or not; 0: any.
    pub lookups_per_gateway_per_day: u32,
}

/// Credits per operation (whole numbers, never negative).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    pub text: u32,
    pub image: u32,
    pub file: u32,
    pub blob: u32,
    pub lookup: u32,
    /// Each recipient an alarm is delivered to (its rings are free).
    pub alarm: u32,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Source(#[from] config::ConfigError),
    #[error("configuration key {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

impl Settings {
    /// Loads the layers from the process environment.
    pub fn load() -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        Self::load_from(&vars)
    }

    /// Loads the layers with `vars` standing in for the environment (tests).
    pub fn load_from(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let config_dir = vars
            .get("TOCSIN_CONFIG_DIR")
            .map_or("config", String::as_str);
        let mut builder =
            Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
        if let Some(env) = vars.get("TOCSIN_ENV").filter(|e| !e.is_empty()) {
            let path = Path::new(config_dir).join(format!("{env}.toml"));
            if !path.is_file() {
                return Err(invalid(
                    "TOCSIN_ENV",
                    format!("{env:?} selects {}, which does not exist", path.display()),
                ));
            }
            builder = builder.add_source(File::from(path).format(FileFormat::Toml));
        }
        let env_source = Environment::with_prefix("TOCSIN")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("callbacks.allowed_ranges")
            .with_list_parse_key("callbacks.allowed_ports")
            .with_list_parse_key("server.trusted_proxies")
            .with_list_parse_key("callbacks.retry_schedule_secs")
            .source(Some(vars.clone()));
        let mut settings: Settings = builder.add_source(env_source).build()?.try_deserialize()?;
        settings.resolve_files()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Replaces `*_file` indirections with the files' contents.
    fn resolve_files(&mut self) -> Result<(), ConfigError> {
        if !self.directory.enrollment_token_file.is_empty() {
            let path = &self.directory.enrollment_token_file;
            let text = std::fs::read_to_string(path).map_err(|e| {
                invalid(
                    "directory.enrollment_token_file",
                    format!("cannot read {path}: {e}"),
                )
            })?;
            self.directory.enrollment_token = text.trim().to_owned();
        }
        if !self.storage.url_file.is_empty() {
            let text = std::fs::read_to_string(&self.storage.url_file).map_err(|e| {
                invalid(
                    "storage.url_file",
                    format!("cannot read {}: {e}", self.storage.url_file),
                )
            })?;
            self.storage.url = text.trim().to_owned();
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let url = &self.storage.url;
        if !(url.is_empty()
            || url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            return Err(invalid(
                "storage.url",
                "must be empty (embedded SQLite), sqlite://PATH or postgres://USER@HOST/DB",
            ));
        }
        if self.storage.data_dir.as_os_str().is_empty() {
            return Err(invalid("storage.data_dir", "must not be empty"));
        }
        if self.messages.ttl_secs == 0 {
            return Err(invalid("messages.ttl_secs", "must be at least 1 second"));
        }
        if self.messages.idempotency_window_secs < 60 {
            return Err(invalid(
                "messages.idempotency_window_secs",
                "must be at least 60 seconds, or retries would be charged twice",
            ));
        }
        if self.messages.idempotency_max_keys < 1000 {
            return Err(invalid(
                "messages.idempotency_max_keys",
                "must be at least 1000, or retries would be charged twice",
            ));
        }
        if self.server.body_timeout_secs == 0 || self.blobs.upload_timeout_secs == 0 {
            return Err(invalid(
                "server.body_timeout_secs",
                "body_timeout_secs and blobs.upload_timeout_secs must be at least 1 second",
            ));
        }
        if self.directory.invite_ttl_secs < 60 {
            return Err(invalid(
                "directory.invite_ttl_secs",
                "must be at least 60 seconds",
            ));
        }
        if self.chat.inbox_messages == 0 {
            return Err(invalid("chat.inbox_messages", "must be at least 1"));
        }
        if self.chat.device_bytes_per_second > 0
            && (self.chat.device_bytes_burst as usize)
                < 2 + tocsin_sdk::protocol::csp::MAX_FRAME_BOX_LEN
        {
            return Err(invalid(
                "chat.device_bytes_burst",
                "must hold at least one largest frame (8194 bytes)",
            ));
        }
        if self.chat.receipt_message_ids == 0 {
            return Err(invalid("chat.receipt_message_ids", "must be at least 1"));
        }
        if self.chat.sessions_per_identity == 0 || self.chat.devices_per_identity == 0 {
            return Err(invalid(
                "chat.sessions_per_identity",
                "sessions_per_identity and devices_per_identity must be at least 1",
            ));
        }
        if self
            .devices
            .stale_after()
            .is_some_and(|after| after < DeviceSettings::MIN_STALE_AFTER)
        {
            return Err(invalid(
                "devices.stale_after_secs",
                "must be 0 (never) or at least 3600 seconds",
            ));
        }
        if self.callbacks.pending_per_sender == 0 || self.callbacks.pending_per_gateway == 0 {
            return Err(invalid(
                "callbacks.pending_per_sender",
                "pending_per_sender and pending_per_gateway must be at least 1",
            ));
        }
        let roles = self.roles;
        if !(roles.api || roles.chat || roles.callbacks || roles.housekeeping) {
            return Err(invalid(
                "roles",
                "a node needs at least one of api, chat, callbacks and housekeeping",
            ));
        }
        if self.chat.recheck_secs == 0 {
            return Err(invalid("chat.recheck_secs", "must be at least 1 second"));
        }
        if !(30..=600).contains(&self.chat.idle_timeout_secs) {
            return Err(invalid(
                "chat.idle_timeout_secs",
                "must be between 30 and 600 seconds",
            ));
        }
        if self.callbacks.retry_schedule_secs.is_empty() {
            return Err(invalid(
                "callbacks.retry_schedule_secs",
                "needs at least one delay",
            ));
        }
        if self.callbacks.per_url_concurrency == 0
            || self.callbacks.timeout_secs == 0
            || self.callbacks.sweep_secs == 0
        {
            return Err(invalid(
                "callbacks",
                "per_url_concurrency, timeout_secs and sweep_secs must be at least 1",
            ));
        }
        match (
            self.server.tls_cert_file.is_empty(),
            self.server.tls_key_file.is_empty(),
        ) {
            (false, true) => {
                return Err(invalid(
                    "server.tls_key_file",
                    "is empty while server.tls_cert_file is set; set both (HTTPS) or neither",
                ))
            }
            (true, false) => {
                return Err(invalid(
                    "server.tls_cert_file",
                    "is empty while server.tls_key_file is set; set both (HTTPS) or neither",
                ))
            }
            _ => {}
        }
        if let Err(e) = crate::client_ip::TrustedProxies::new(&self.server.trusted_proxies) {
            return Err(invalid("server.trusted_proxies", e));
        }
        if let Err(e) =
            crate::callback::guard::AddressPolicy::new(&self.callbacks.allowed_ranges, &[])
        {
            return Err(invalid("callbacks.allowed_ranges", e));
        }
        if self.callbacks.allowed_ports.contains(&0) {
            return Err(invalid(
                "callbacks.allowed_ports",
                "port 0 cannot be reached",
            ));
        }
        let proxy = &self.callbacks.proxy_url;
        if !proxy.is_empty()
            && !url::Url::parse(proxy)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        {
            return Err(invalid(
                "callbacks.proxy_url",
                "must be empty or a URL such as http://proxy.internal:3128",
            ));
        }
        if self.blobs.max_bytes == 0 {
            return Err(invalid("blobs.max_bytes", "must be at least 1 byte"));
        }
        if self.blobs.ttl_secs == 0 {
            return Err(invalid("blobs.ttl_secs", "must be at least 1 second"));
        }
        if self.ratelimit.auth_failures_per_minute == 0 {
            return Err(invalid(
                "ratelimit.auth_failures_per_minute",
                "must be at least 1 (failed logins are always limited)",
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(invalid("log.level", format!("not a valid filter: {e}")));
        }
        Ok(())
    }

    /// The database URL to open: the configured one, or the SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        if self.storage.url.is_empty() {
            format!(
                "sqlite://{}",
                self.storage.data_dir.join("tocsin.db").display()
            )
        } else {
            self.storage.url.clone()
        }
    }

    /// Where the chat server's long-term key lives.
    pub fn server_key_path(&self) -> PathBuf {
        if self.chat.server_key_file.is_empty() {
            self.storage.data_dir.join("server.key")
        } else {
            PathBuf::from(&self.chat.server_key_file)
        }
    }

    /// Where the data key lives.
    pub fn data_key_path(&self) -> PathBuf {
        if self.storage.data_key_file.is_empty() {
            self.storage.data_dir.join("data.key")
        } else {
            PathBuf::from(&self.storage.data_key_file)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::load_from(&vars)
    }

    #[test]
    fn embedded_default_loads_with_documented_values() {
        let s = load(&[]).unwrap();
        assert_eq!(s.server.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.server.metrics_addr.to_string(), "127.0.0.1:9090");
        assert_eq!(s.database_url(), "sqlite://./data/tocsin.db");
        assert_eq!(s.data_key_path(), PathBuf::from("./data/data.key"));
        assert_eq!(s.messages.ttl_secs, 14 * 24 * 3600);
        assert_eq!(
            (
                s.prices.text,
                s.prices.blob,
                s.prices.lookup,
                s.prices.alarm
            ),
            (1, 1, 0, 1)
        );
        assert!(
            !s.directory.open_enrollment,
            "enrolment is by invite unless opened"
        );
        assert_eq!(s.directory.invite_ttl_secs, 7 * 24 * 3600);
        assert_eq!(
            s.devices.stale_after(),
            Some(Duration::from_secs(30 * 24 * 3600))
        );
    }

    #[test]
    fn environment_variables_override_the_file() {
        let s = load(&[
            ("TOCSIN__SERVER__HTTP_ADDR", "127.0.0.1:0"),
            ("TOCSIN__STORAGE__URL", "postgres://postgres@127.0.0.1/x"),
            ("TOCSIN__PRICES__TEXT", "3"),
        ])
        .unwrap();
        assert_eq!(s.server.http_addr.port(), 0);
        assert_eq!(s.database_url(), "postgres://postgres@127.0.0.1/x");
        assert_eq!(s.prices.text, 3);
    }

    #[test]
    fn environment_file_layer_applies_and_a_missing_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("staging.toml"),
            "[messages]\nttl_secs = 300\n",
        )
        .unwrap();
        let d = dir.path().to_str().unwrap();
        let s = load(&[("TOCSIN_CONFIG_DIR", d), ("TOCSIN_ENV", "staging")]).unwrap();
        assert_eq!(s.messages.ttl_secs, 300);
        let err = load(&[("TOCSIN_CONFIG_DIR", d), ("TOCSIN_ENV", "nope")]).unwrap_err();
        assert!(err.to_string().contains("nope.toml"), "{err}");
    }

    #[test]
    fn production_keeps_metrics_on_loopback() {
        let s = load(&[("TOCSIN_ENV", "production")]).unwrap();
        assert!(
            s.server.metrics_addr.ip().is_loopback(),
            "{:?}",
            s.server.metrics_addr
        );
        assert!(!s.server.http_addr.ip().is_loopback());
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases = [
            ("TOCSIN__SERVER__HTTP_ADDR", "not-an-address", "http_addr"),
            ("TOCSIN__STORAGE__MAX_CONNECTIONS", "0", "max_connections"),
            ("TOCSIN__PRICES__TEXT", "-1", "text"),
            ("TOCSIN__STORAGE__URL", "mysql://x", "storage.url"),
            ("TOCSIN__MESSAGES__TTL_SECS", "0", "messages.ttl_secs"),
            (
                "TOCSIN__MESSAGES__IDEMPOTENCY_WINDOW_SECS",
                "5",
                "messages.idempotency_window_secs",
            ),
            (
                "TOCSIN__MESSAGES__IDEMPOTENCY_MAX_KEYS",
                "10",
                "messages.idempotency_max_keys",
            ),
            ("TOCSIN__CHAT__INBOX_MESSAGES", "0", "chat.inbox_messages"),
            (
                "TOCSIN__CHAT__DEVICE_BYTES_BURST",
                "100",
                "chat.device_bytes_burst",
            ),
            (
                "TOCSIN__CHAT__SESSIONS_PER_IDENTITY",
                "0",
                "sessions_per_identity",
            ),
            (
                "TOCSIN__CALLBACKS__PENDING_PER_GATEWAY",
                "0",
                "pending_per_gateway",
            ),
            ("TOCSIN__CALLBACKS__SWEEP_SECS", "0", "sweep_secs"),
            (
                "TOCSIN__DIRECTORY__INVITE_TTL_SECS",
                "59",
                "invite_ttl_secs",
            ),
            ("TOCSIN__LOG__FORMAT", "xml", "format"),
            (
                "TOCSIN__DEVICES__STALE_AFTER_SECS",
                "3599",
                "devices.stale_after_secs",
            ),
        ];
        for (key, value, named) in cases {
            let err = load(&[(key, value)]).unwrap_err().to_string();
            assert!(err.contains(named), "{key}={value}: {err}");
        }
    }

    #[test]
    fn lists_come_from_comma_separated_variables_and_numbers_stay_text_where_text_is_expected() {
        let s = load(&[
            ("TOCSIN__CALLBACKS__ALLOWED_RANGES", "127.0.0.0/8,::1/128"),
            ("TOCSIN__CALLBACKS__RETRY_SCHEDULE_SECS", "1,2,3"),
            ("TOCSIN__DIRECTORY__ENROLLMENT_TOKEN", "123456"),
        ])
        .unwrap();
        assert_eq!(s.callbacks.allowed_ranges, ["127.0.0.0/8", "::1/128"]);
        assert_eq!(s.callbacks.retry_schedule_secs, [1, 2, 3]);
        assert_eq!(s.directory.enrollment_token, "123456");
        let err =
            load(&[("TOCSIN__CALLBACKS__ALLOWED_RANGES", "nonsense,10.0.0.0/8")]).unwrap_err();
        assert!(
            err.to_string().contains("callbacks.allowed_ranges"),
            "{err}"
        );
    }

    #[test]
    fn tls_files_are_set_both_or_neither() {
        let s = load(&[]).unwrap();
        assert!(!s.server.tls_enabled() && !s.server.allow_plain_http);
        let s = load(&[
            ("TOCSIN__SERVER__TLS_CERT_FILE", "/etc/tocsin/chain.pem"),
            ("TOCSIN__SERVER__TLS_KEY_FILE", "/etc/tocsin/key.pem"),
        ])
        .unwrap();
        assert!(s.server.tls_enabled());
        let err = load(&[("TOCSIN__SERVER__TLS_CERT_FILE", "/etc/tocsin/chain.pem")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.tls_key_file"), "{err}");
        let err = load(&[("TOCSIN__SERVER__TLS_KEY_FILE", "/etc/tocsin/key.pem")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.tls_cert_file"), "{err}");
    }

    #[test]
    fn plain_http_is_refused_off_loopback_unless_tls_or_allowed() {
        let check = |addr: &str, extra: &[(&str, &str)]| {
            let mut vars = vec![("TOCSIN__SERVER__HTTP_ADDR", addr)];
            vars.extend_from_slice(extra);
            load(&vars).unwrap().server.check_plain_http()
        };
        for addr in [
            "127.0.0.1:8080",
            "127.0.0.2:0",
            "[::1]:8080",
            "[::ffff:127.0.0.1]:80",
        ] {
            assert!(check(addr, &[]).is_ok(), "{addr}");
        }
        let tls = [
            ("TOCSIN__SERVER__TLS_CERT_FILE", "chain.pem"),
            ("TOCSIN__SERVER__TLS_KEY_FILE", "key.pem"),
        ];
        let allowed = [("TOCSIN__SERVER__ALLOW_PLAIN_HTTP", "true")];
        for addr in [
            "0.0.0.0:8080",
            "10.0.0.5:443",
            "[::]:8080",
            "[2001:db8::1]:80",
        ] {
            let err = check(addr, &[]).unwrap_err().to_string();
            assert!(
                err.contains("server.http_addr")
                    && err.contains("tls_cert_file")
                    && err.contains("allow_plain_http = true"),
                "{addr}: {err}"
            );
            assert!(check(addr, &tls).is_ok(), "{addr} with TLS");
            assert!(check(addr, &allowed).is_ok(), "{addr} allowed");
        }
        // Production binds every interface: it needs a certificate or the proxy's word.
        let production = load(&[("TOCSIN_ENV", "production")]).unwrap();
        assert!(production.server.check_plain_http().is_err());
    }

    #[test]
    fn url_can_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db-url");
        std::fs::write(&file, "postgres://app:pw@db/tocsin\n").unwrap();
        let s = load(&[("TOCSIN__STORAGE__URL_FILE", file.to_str().unwrap())]).unwrap();
        assert_eq!(s.database_url(), "postgres://app:pw@db/tocsin");
        let err = load(&[("TOCSIN__STORAGE__URL_FILE", "/nonexistent/x")]).unwrap_err();
        assert!(err.to_string().contains("storage.url_file"), "{err}");
    }
}
