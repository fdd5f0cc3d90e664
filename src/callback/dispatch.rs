//! The dispatcher: claims due outbox entries and POSTs each to its gateway ID's URL. One
//! dispatcher runs per outbox ([`Deliverable`] says how an entry becomes a request):
//!
//! * callbacks go to the callback URL exactly as the Gateway API's callback contract says
//!   (form fields, `date` in whole seconds, MAC = HMAC-SHA256 with the ID's API secret
//!   over from‖to‖messageId‖date‖nonce‖box, optional nickname outside the MAC);
//! * status events go to the status URL as JSON, signed with the ID's status signing
//!   secret (`X-Tocsin-Signature`, see `tocsin_sdk::protocol::status_signature`).
//!
//! 200 means taken and the entry is deleted. Anything else — another status, a timeout, a
//! refused connection, a forbidden address — schedules a retry after the configured delay
//! (with ±20 % jitter) or, past the horizon, dead-letters the entry. Each entry is
//! delivered by its own task, and requests to one host are limited to a few at a time, so
//! a slow receiver delays only its own deliveries. Claims are leases in the store: a
//! restart, or another node, picks up whatever was not finished.

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tocsin_sdk::protocol::{
    callback_mac_hex, status_signature, ApiSecret, CallbackFields, GatewayId, StatusSecret,
    STATUS_SIGNATURE_HEADER,
};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::guard::{self, AddressPolicy, GuardedResolver};
use crate::domain::UnixMs;
use crate::state::AppState;
use crate::store::{CallbackEntry, Claimed, OutboxEntry, StatusEntry};

/// Entries claimed per round.
const BATCH: i64 = 64;
/// Deliveries under way at once on this node; a round claims no more than there is room
/// for, so a backlog behind a slow host stays in the store instead of in memory.
const MAX_IN_FLIGHT: usize = 512;

/// One attempt's request, as an entry makes it.
pub struct Prepared {
    pub url: String,
    pub content_type: &'static str,
    /// A header besides the content type (a signature), if any.
    pub signature: Option<(&'static str, String)>,
    pub body: String,
}

/// An outbox entry the dispatcher can deliver.
pub trait Deliverable: OutboxEntry + Sync {
    /// What the log calls an entry.
    const WHAT: &'static str;
    fn gateway(&self) -> &GatewayId;
    /// The request of an attempt at `now`, with the gateway ID's URL and secret as they are
    /// now; an error (no URL any more, say) counts as a failed attempt.
    fn prepare(
        &self,
        state: &AppState,
        now: UnixMs,
    ) -> impl Future<Output = Result<Prepared, String>> + Send;
}

/// Delivers the callback outbox.
pub type CallbackDispatcher = Dispatcher<CallbackEntry>;
/// Delivers the status outbox.
pub type StatusDispatcher = Dispatcher<StatusEntry>;

/// Delivers one outbox.
pub struct Dispatcher<T> {
    state: AppState,
    policy: Arc<AddressPolicy>,
    /// Callbacks go through `callbacks.proxy_url`.
    proxied: bool,
    client: reqwest::Client,
    per_host: Mutex<HashMap<String, Arc<Semaphore>>>,
    in_flight: Arc<Semaphore>,
    entries: PhantomData<fn() -> T>,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    Retry {
        error: String,
        at: UnixMs,
    },
    Dead {
        error: String,
    },
    /// The claim ran out while the delivery waited for its host, and another worker
    /// claimed the entry: nothing was sent or recorded here.
    Superseded,
}

/// What [`Dispatcher::post`] did.
enum Sent {
    Taken,
    Superseded,
}

impl<T: Deliverable> Dispatcher<T> {
    pub fn new(state: AppState) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let settings = &state.settings.callbacks;
        let policy = Arc::new(
            AddressPolicy::new(&settings.allowed_ranges, &settings.allowed_ports)
                .map_err(anyhow::Error::msg)?,
        );
        // Never through a proxy of the environment (HTTP_PROXY, ALL_PROXY, …): the proxy,
        // not the guard, would then pick the address reached. Only an explicitly configured
        // one is used, and the guard then checks each target before it is handed over.
        let builder = reqwest::Client::builder();
        let (builder, proxy_host) = match settings.proxy_url.as_str() {
            "" => (builder.no_proxy(), None),
            raw => {
                let parsed = url::Url::parse(raw)
                    .map_err(|e| anyhow::anyhow!("callbacks.proxy_url {raw:?}: {e}"))?;
                let host = parsed.host_str().map(str::to_owned);
                (builder.proxy(reqwest::Proxy::all(raw)?), host)
            }
        };
        let proxied = proxy_host.is_some();
        let client = builder
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(settings.timeout_secs))
            .dns_resolver(GuardedResolver {
                policy: policy.clone(),
                proxy_host,
            })
            .user_agent(concat!("tocsin/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            state,
            policy,
            proxied,
            client,
            per_host: Mutex::new(HashMap::new()),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            entries: PhantomData,
        })
    }

    /// One round at time `now` (unix ms): claims what is due and delivers it, returning
    /// each entry's outcome once all attempts of the round have finished.
    pub async fn run_once(self: &Arc<Self>, now: UnixMs) -> anyhow::Result<Vec<Attempt>> {
        let mut tasks = self.start_round(now).await?;
        let mut outcomes = Vec::new();
        while let Some(done) = tasks.join_next().await {
            outcomes.push(done?);
        }
        Ok(outcomes)
    }

    /// Claims due entries and starts one task per entry without waiting for them.
    async fn start_round(self: &Arc<Self>, now: UnixMs) -> anyhow::Result<JoinSet<Attempt>> {
        let mut tasks = JoinSet::new();
        let room = self.in_flight.available_permits().min(BATCH as usize);
        if room == 0 {
            return Ok(tasks);
        }
        let claimed = self
            .state
            .store
            .claim::<T>(now, self.lease_ms(), room as i64)
            .await?;
        for entry in claimed {
            let this = self.clone();
            let slot = self.in_flight.clone().acquire_owned().await?;
            tasks.spawn(async move {
                let attempt = this.deliver(entry, now).await;
                drop(slot);
                attempt
            });
        }
        Ok(tasks)
    }

    /// How long a claim holds: the request timeout three times over.
    fn lease_ms(&self) -> i64 {
        i64::try_from(
            self.state
                .settings
                .callbacks
                .timeout_secs
                .saturating_mul(3_000),
        )
        .unwrap_or(i64::MAX)
    }

    /// Runs a round whenever an entry is committed to its outbox (on this node, or on
    /// another that says so), and every `callbacks.sweep_secs` anyway (retries coming due,
    /// wake-ups missed), until the task is aborted.
    /// A round that claimed a full batch is followed by another at once. A round's
    /// deliveries finish in their own task, so a slow host does not hold up the next round.
    pub async fn run(self: Arc<Self>) {
        let sweep = Duration::from_secs(self.state.settings.callbacks.sweep_secs);
        let mut every = tokio::time::interval(sweep);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = self.state.hub.outbox_waiting(T::OUTBOX) => {}
            }
            loop {
                match self.start_round(UnixMs::now()).await {
                    Ok(mut tasks) => {
                        let full = tasks.len() >= BATCH as usize;
                        tokio::spawn(async move { while tasks.join_next().await.is_some() {} });
                        if !full {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!("{} round failed: {e:#}", T::WHAT);
                        break;
                    }
                }
            }
        }
    }

    fn host_limit(&self, url: &str) -> Arc<Semaphore> {
        let host = url::Url::parse(url)
            .ok()
            .map(|u| {
                format!(
                    "{}:{}",
                    u.host_str().unwrap_or_default(),
                    u.port_or_known_default().unwrap_or(0)
                )
            })
            .unwrap_or_default();
        let mut map = self.per_host.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry(host)
            .or_insert_with(|| {
                Arc::new(Semaphore::new(
                    self.state.settings.callbacks.per_url_concurrency,
                ))
            })
            .clone()
    }

    async fn deliver(&self, claimed: Claimed<T>, now: UnixMs) -> Attempt {
        let attempt = match self.post(&claimed, now).await {
            Ok(Sent::Taken) => Attempt::Delivered,
            Ok(Sent::Superseded) => return Attempt::Superseded,
            Err(error) => self.schedule(&claimed, now, error),
        };
        let (store, outbox) = (&self.state.store, T::OUTBOX);
        let recorded = match &attempt {
            Attempt::Delivered => store.outbox_delivered(outbox, claimed.id).await,
            Attempt::Retry { error, at } => {
                store
                    .outbox_failed(outbox, claimed.id, error, Some(*at))
                    .await
            }
            Attempt::Dead { error } => {
                let gateway = claimed.entry.gateway();
                tracing::warn!(gateway_id = %gateway, "{} dead-lettered: {error}", T::WHAT);
                store.outbox_failed(outbox, claimed.id, error, None).await
            }
            Attempt::Superseded => Ok(()),
        };
        if let Err(e) = recorded {
            tracing::error!("cannot record a {} attempt: {e}", T::WHAT);
        }
        attempt
    }

    /// The next attempt per the schedule, or dead past the horizon.
    fn schedule(&self, claimed: &Claimed<T>, now: UnixMs, error: String) -> Attempt {
        let settings = &self.state.settings.callbacks;
        let horizon = i64::try_from(settings.horizon_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let schedule = &settings.retry_schedule_secs;
        let step = usize::try_from(claimed.attempts)
            .unwrap_or(usize::MAX)
            .min(schedule.len() - 1);
        let delay_ms = schedule[step].saturating_mul(1000);
        let jitter = jitter_fraction();
        let delay = i64::try_from((delay_ms as f64 * jitter) as u64)
            .unwrap_or(i64::MAX)
            .max(1);
        let at = now.plus_ms(delay);
        if at.ms_since(claimed.created_at) > horizon {
            Attempt::Dead { error }
        } else {
            Attempt::Retry { error, at }
        }
    }

    /// POSTs the entry. `now` is the round's clock; the wait for the host's turn is added
    /// to it before the claim is renewed.
    async fn post(&self, claimed: &Claimed<T>, now: UnixMs) -> Result<Sent, String> {
        let started = std::time::Instant::now();
        let Prepared {
            url,
            content_type,
            signature,
            body,
        } = claimed.entry.prepare(&self.state, now).await?;
        // Literal addresses never reach the resolver, nor does a target behind a proxy,
        // and the resolver sees no ports: all of that is checked here.
        let parsed = url::Url::parse(&url).map_err(|e| e.to_string())?;
        guard::check_destination(&parsed, &self.policy, self.proxied)
            .await
            .map_err(|why| format!("callback address refused: {why}"))?;
        let limit = self.host_limit(&url);
        let _permit = limit.acquire().await.map_err(|e| e.to_string())?;
        // If the wait for the host left too little of the claim to cover the request, renew
        // it first, unless another worker has claimed the entry meanwhile, which then
        // delivers it instead. (Usually the wait is short and this costs nothing.)
        let clock = now.plus(started.elapsed());
        let request_ms = i64::try_from(
            self.state
                .settings
                .callbacks
                .timeout_secs
                .saturating_mul(1_000),
        )
        .unwrap_or(i64::MAX);
        if clock.plus_ms(request_ms) >= claimed.lease_until {
            let held = self
                .state
                .store
                .renew_lease(
                    T::OUTBOX,
                    claimed.id,
                    claimed.lease_until,
                    clock.plus_ms(self.lease_ms()),
                )
                .await
                .map_err(|e| e.to_string())?;
            if !held {
                return Ok(Sent::Superseded);
            }
        }
        let mut request = self.client.post(&url).header("content-type", content_type);
        if let Some((name, value)) = signature {
            request = request.header(name, value);
        }
        let res = request.body(body).send().await.map_err(|e| describe(&e))?;
        match res.status().as_u16() {
            200 => Ok(Sent::Taken),
            other => Err(format!("receiver answered {other}")),
        }
    }
}

impl Deliverable for CallbackEntry {
    const WHAT: &'static str = "callback";

    fn gateway(&self) -> &GatewayId {
        &self.gateway
    }

    async fn prepare(&self, state: &AppState, now: UnixMs) -> Result<Prepared, String> {
        let gateway = state
            .store
            .gateway(&self.gateway)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the gateway ID no longer exists")?;
        let url = gateway
            .callback_url
            .ok_or("no callback URL is set for this gateway ID")?;
        let secret = state
            .data_key
            .open(&gateway.secret_sealed)
            .map_err(|e| e.to_string())?;
        let secret = std::str::from_utf8(&secret)
            .ok()
            .and_then(|s| ApiSecret::parse(s).ok())
            .ok_or("stored secret is unreadable")?;
        // `date` is the attempt's time, not the message's: a receiver refuses deliveries
        // older than its freshness window (5 minutes in the SDKs), and a retry after a
        // longer outage must not be refused forever. The MAC covers it, per attempt.
        let (message_id, date) = (self.message_id.to_string(), now.as_secs().to_string());
        let (nonce, box_hex) = (self.nonce.to_string(), hex::encode(&self.body));
        let fields = CallbackFields {
            from: self.sender.as_str(),
            to: self.gateway.as_str(),
            message_id: &message_id,
            date: &date,
            nonce: &nonce,
            box_hex: &box_hex,
        };
        let mac = callback_mac_hex(&secret, &fields);
        let mut form: Vec<(&str, &str)> = vec![
            ("from", fields.from),
            ("to", fields.to),
            ("messageId", &message_id),
            ("date", &date),
            ("nonce", &nonce),
            ("box", &box_hex),
            ("mac", &mac),
        ];
        if let Some(nick) = self.nickname.as_deref() {
            form.push(("nickname", nick));
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        Ok(Prepared {
            url,
            content_type: "application/x-www-form-urlencoded",
            signature: None,
            body,
        })
    }
}

impl Deliverable for StatusEntry {
    const WHAT: &'static str = "status event";

    fn gateway(&self) -> &GatewayId {
        &self.gateway
    }

    async fn prepare(&self, state: &AppState, now: UnixMs) -> Result<Prepared, String> {
        let hook = state
            .store
            .status_hook(&self.gateway)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no status URL is set for this gateway ID")?;
        let secret = state
            .data_key
            .open(&hook.secret_sealed)
            .map_err(|e| e.to_string())?;
        let secret = std::str::from_utf8(&secret)
            .ok()
            .and_then(|s| StatusSecret::parse(s).ok())
            .ok_or("stored status signing secret is unreadable")?;
        // Signed at the attempt's time, for the same reason as a callback's `date`.
        let t = u64::try_from(now.as_secs()).unwrap_or(0);
        let signature = status_signature(&secret, t, self.payload.as_bytes());
        Ok(Prepared {
            url: hook.url,
            content_type: "application/json",
            signature: Some((STATUS_SIGNATURE_HEADER, signature)),
            body: self.payload.clone(),
        })
    }
}

/// A transport error in one line, without the URL (it may carry a customer's token).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut cause = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(c) = cause {
        detail = c.to_string();
        cause = c.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

/// A factor in 0.8..1.2 from the OS random generator.
fn jitter_fraction() -> f64 {
    let bytes = tocsin_sdk::protocol::MessageId::random();
    let n = u16::from_le_bytes([bytes.as_bytes()[0], bytes.as_bytes()[1]]);
    0.8 + 0.4 * f64::from(n) / f64::from(u16::MAX)
}
