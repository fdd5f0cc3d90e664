//! The `tocsin` binary as an operator uses it: `serve` with signals, and an `admin` round
//! trip, on the run's engine.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::helpers::Engine;
use tocsin_sdk::protocol::StatusSecret;

/// A data directory and, on PostgreSQL, a fresh database for the binary to run on.
struct Env {
    engine: Engine,
    dir: tempfile::TempDir,
    url: Option<String>,
}

impl Env {
    async fn new() -> Self {
        let engine = Engine::selected();
        Self {
            engine,
            dir: tempfile::tempdir().unwrap(),
            url: engine.fresh_storage_url().await,
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tocsin"));
        cmd.env_remove("TOCSIN_ENV")
            .env_remove("RUST_LOG")
            .env("TOCSIN__STORAGE__DATA_DIR", self.dir.path())
            .env("TOCSIN__SERVER__HTTP_ADDR", "127.0.0.1:0")
            .env("TOCSIN__SERVER__METRICS_ADDR", "127.0.0.1:0");
        if let Some(url) = &self.url {
            cmd.env("TOCSIN__STORAGE__URL", url);
        }
        cmd
    }

    fn admin(&self, args: &[&str]) -> Output {
        self.command().arg("admin").args(args).output().unwrap()
    }

    /// Runs an admin command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.admin(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "tocsin admin {args:?} failed: {stderr}"
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs an admin command that must be refused; returns its one-line reason.
    fn refused(&self, args: &[&str]) -> String {
        let out = self.admin(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "tocsin admin {args:?} should be refused"
        );
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr
    }
}

fn field<'a>(output: &'a str, label: &str) -> &'a str {
    output
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in {output}"))
        .trim()
}

fn admin_round_trip(env: &Env) {
    // Accounts and credits.
    assert!(env
        .ok(&["account", "create", "acme", "--credits", "100"])
        .contains("balance: 100"));
    assert!(env
        .refused(&["account", "create", "acme"])
        .contains("already exists"));
    assert!(env
        .refused(&["account", "create", "Bad Name"])
        .contains("account name"));
    assert!(env
        .ok(&["credits", "add", "acme", "25", "--reason", "invoice 7"])
        .contains("balance: 125"));
    assert!(env
        .refused(&["credits", "add", "nobody", "5"])
        .contains("no account named nobody"));
    let bad_amount = env
        .command()
        .args(["admin", "credits", "add", "acme", "0"])
        .output()
        .unwrap();
    assert!(!bad_amount.status.success());
    let shown = env.ok(&["account", "show", "acme"]);
    assert_eq!(field(&shown, "balance:"), "125");
    assert!(
        shown.contains("invoice 7") && shown.contains("initial credits"),
        "{shown}"
    );

    // A basic-mode gateway ID with everything generated.
    let created = env.ok(&["gateway", "create", "--account", "acme", "--mode", "basic"]);
    let line = created.lines().next().unwrap();
    let id = line.split_whitespace().nth(3).unwrap().to_owned();
    assert!(id.starts_with('*') && id.len() == 8, "{created}");
    let secret = field(&created, "secret:");
    assert_eq!(secret.len(), 16);
    assert!(
        !created.contains("private key:"),
        "basic mode never prints the private key"
    );

    // An E2E gateway ID with a given ID, secret file and customer key.
    let secret_file = env.dir.path().join("secret");
    std::fs::write(&secret_file, "MySecret12345678\n").unwrap();
    let customer_key = "5e2eb4cd2b9d1b8a5e1f1f0bbbb7b4cfa0db8d3a8a1a6e4e4b9f0a3c5d7e9f21";
    let created = env.ok(&[
        "gateway",
        "create",
        "--account",
        "acme",
        "--mode",
        "e2e",
        "--id",
        "*ALERTS1",
        "--secret-file",
        secret_file.to_str().unwrap(),
        "--public-key",
        customer_key,
    ]);
    assert!(
        !created.contains("MySecret"),
        "a secret given by file is not echoed"
    );
    assert_eq!(field(&created, "public key:"), customer_key);
    assert!(env
        .refused(&[
            "gateway",
            "create",
            "--account",
            "acme",
            "--mode",
            "e2e",
            "--id",
            "*ALERTS1"
        ])
        .contains("already exists"));
    assert!(env
        .refused(&[
            "gateway",
            "create",
            "--account",
            "acme",
            "--mode",
            "e2e",
            "--id",
            "NOSTAR12"
        ])
        .contains("--id"));
    assert!(env
        .refused(&[
            "gateway",
            "create",
            "--account",
            "acme",
            "--mode",
            "e2e",
            "--public-key",
            &"00".repeat(32)
        ])
        .contains("--public-key"));
    assert!(env
        .refused(&[
            "gateway",
            "create",
            "--account",
            "acme",
            "--mode",
            "basic",
            "--public-key",
            customer_key
        ])
        .contains("e2e mode"));

    env.ok(&[
        "gateway",
        "set-callback",
        "*ALERTS1",
        "https://hooks.example.org/tocsin",
    ]);
    assert!(env
        .refused(&[
            "gateway",
            "set-callback",
            "*ALERTS1",
            "ftp://x.example.org/"
        ])
        .contains("http or https"));
    // Addresses that reach inside through an IPv6 form or a special-purpose range.
    for url in [
        "http://[64:ff9b::7f00:1]/hook",
        "http://[::127.0.0.1]/hook",
        "http://[2002:a00:1::1]/hook",
        "http://[fec0::1]/hook",
        "http://198.18.0.1/hook",
    ] {
        let why = env.refused(&["gateway", "set-callback", "*ALERTS1", url]);
        assert!(why.contains("address"), "{url}: {why}");
    }
    assert!(env
        .refused(&["gateway", "set-callback", "*NOSUCH1", "https://a.example/"])
        .contains("no gateway ID"));
    let shown = env.ok(&["gateway", "show", "*ALERTS1"]);
    assert_eq!(field(&shown, "mode:"), "e2e");
    assert_eq!(field(&shown, "account:"), "acme");
    assert_eq!(
        field(&shown, "callback URL:"),
        "https://hooks.example.org/tocsin"
    );
    assert!(!shown.contains("MySecret"));
    assert_eq!(field(&shown, "bulk lookup:"), "off");
    // Callbacks to a port outside callbacks.allowed_ports are refused.
    let why = env.refused(&[
        "gateway",
        "set-callback",
        "*ALERTS1",
        "https://hooks.example.org:22/x",
    ]);
    assert!(why.contains("callbacks.allowed_ports"), "{why}");
    assert_eq!(
        env.ok(&["gateway", "set-lookup", "*ALERTS1", "--bulk", "on"])
            .trim(),
        "bulk lookup of *ALERTS1: on"
    );
    assert_eq!(
        field(&env.ok(&["gateway", "show", "*ALERTS1"]), "bulk lookup:"),
        "on"
    );
    assert!(env
        .refused(&["gateway", "set-lookup", "*NOSUCH1", "--bulk", "on"])
        .contains("no gateway ID"));
    // The status webhook: the first URL makes a signing secret, shown once; a new URL
    // keeps it; --new-secret replaces it; --clear removes both.
    assert_eq!(
        field(&env.ok(&["gateway", "show", "*ALERTS1"]), "status URL:"),
        "-"
    );
    let set = env.ok(&[
        "gateway",
        "set-status-url",
        "*ALERTS1",
        "https://hooks.example.org/status",
    ]);
    let first = field(&set, "signing secret:");
    assert!(StatusSecret::parse(first).is_ok(), "{set}");
    assert!(set.contains("shown once"), "{set}");
    let moved = env.ok(&[
        "gateway",
        "set-status-url",
        "*ALERTS1",
        "https://hooks.example.org/status2",
    ]);
    assert!(moved.contains("signing secret unchanged") && !moved.contains("tss_"));
    let rotated = env.ok(&[
        "gateway",
        "set-status-url",
        "*ALERTS1",
        "https://hooks.example.org/status2",
        "--new-secret",
    ]);
    let second = field(&rotated, "signing secret:");
    assert!(StatusSecret::parse(second).is_ok() && second != first);
    let shown = env.ok(&["gateway", "show", "*ALERTS1"]);
    assert_eq!(
        field(&shown, "status URL:"),
        "https://hooks.example.org/status2"
    );
    assert!(!shown.contains("tss_"), "the secret is never shown again");
    let why = env.refused(&[
        "gateway",
        "set-status-url",
        "*ALERTS1",
        "http://[::127.0.0.1]/s",
    ]);
    assert!(why.contains("address"), "{why}");
    assert!(env
        .refused(&["gateway", "set-status-url", "*ALERTS1"])
        .contains("--clear"));
    assert!(env
        .refused(&[
            "gateway",
            "set-status-url",
            "*NOSUCH1",
            "https://a.example/"
        ])
        .contains("no gateway ID"));
    env.ok(&["gateway", "set-status-url", "*ALERTS1", "--clear"]);
    assert_eq!(
        field(&env.ok(&["gateway", "show", "*ALERTS1"]), "status URL:"),
        "-"
    );
    // On-call groups of an account, for alarm tiers.
    assert!(env
        .ok(&["group", "list", "--account", "acme"])
        .contains("no groups"));
    env.ok(&["group", "create", "night-shift", "--account", "acme"]);
    assert!(env
        .refused(&["group", "create", "night-shift", "--account", "acme"])
        .contains("already"));
    assert!(env
        .refused(&["group", "create", "night shift", "--account", "acme"])
        .contains("visible ASCII"));
    assert_eq!(
        env.ok(&[
            "group",
            "add",
            "night-shift",
            "ALICE123",
            "BOB45678",
            "--account",
            "acme"
        ])
        .trim(),
        "2 added to group night-shift"
    );
    assert!(env
        .refused(&["group", "add", "night-shift", "alice", "--account", "acme"])
        .contains("alice"));
    assert!(env
        .refused(&["group", "add", "day-shift", "ALICE123", "--account", "acme"])
        .contains("group create day-shift"));
    env.ok(&[
        "group",
        "remove",
        "night-shift",
        "ALICE123",
        "--account",
        "acme",
    ]);
    assert_eq!(
        env.ok(&["group", "list", "--account", "acme"]).trim(),
        "night-shift: BOB45678"
    );
    let listed = env.ok(&["gateway", "list", "--account", "acme"]);
    assert!(
        listed.contains("*ALERTS1") && listed.contains(&id),
        "{listed}"
    );

    // Identities.
    let alice_key = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
    let imported = env.ok(&[
        "identity",
        "import",
        "ALICE123",
        "--public-key",
        alice_key,
        "--phone",
        "+41 79 123 45 67",
        "--email",
        "Test@Threema.ch",
        "--capabilities",
        "text,file",
    ]);
    assert!(imported.contains("imported identity ALICE123"));
    // Stored as the lookup hashes of spec §3, never as the number or address.
    assert_eq!(
        field(&imported, "phone hash:"),
        "ad398f4d7ebe63c6550a486cc6e07f9baa09bd9d8b3d8cb9d9be106d35a7fdbc"
    );
    assert_eq!(
        field(&imported, "email hash:"),
        "1ea093239cc5f0e1b6ec81b866265b921f26dc4033025410063309f4d1a8ee2c"
    );
    assert!(env
        .refused(&["identity", "import", "ALICE123", "--public-key", alice_key])
        .contains("already exists"));
    assert!(env
        .refused(&["identity", "import", "alice123", "--public-key", alice_key])
        .contains("identity ID"));
    assert!(env
        .refused(&["identity", "import", "BOB12345", "--public-key", "abcd"])
        .contains("--public-key"));
    let shown = env.ok(&["identity", "show", "ALICE123"]);
    assert_eq!(
        field(&shown, "public key:"),
        format!("{alice_key} (version 1)")
    );
    assert_eq!(field(&shown, "capabilities:"), "text,file");
    env.ok(&["identity", "revoke", "ALICE123"]);
    assert_eq!(
        field(&env.ok(&["identity", "show", "ALICE123"]), "revoked:"),
        "yes"
    );
    assert!(env.ok(&["identity", "list"]).contains("ALICE123"));

    // Invite codes: printed once, kept as hashes, listed without the codes.
    let made = env.ok(&["identity", "invite", "--count", "2", "--expires", "2h"]);
    let codes: Vec<&str> = made.lines().take(2).collect();
    for code in &codes {
        tocsin_sdk::protocol::InviteCode::parse(code).unwrap();
    }
    assert_ne!(codes[0], codes[1]);
    assert!(
        made.lines().nth(2).unwrap().starts_with("2 invite code(s)"),
        "{made}"
    );
    let listed = env.ok(&["identity", "invites"]);
    assert_eq!(
        listed.lines().filter(|l| l.ends_with(" open")).count(),
        2,
        "{listed}"
    );
    assert!(!listed.contains(codes[0]) && !listed.contains(&codes[0].replace('-', "")));
    assert!(env
        .refused(&["identity", "invite", "--count", "0"])
        .contains("--count must be from 1 to 1000"));
    assert!(env
        .refused(&["identity", "invite", "--expires", "7 days"])
        .contains("--expires"));

    // The chat server's key: created once, then the same on every call.
    let key = env.ok(&["server-key"]);
    assert_eq!(key.trim().len(), 64, "{key}");
    assert_eq!(env.ok(&["server-key"]), key);
}

#[tokio::test]
async fn admin_round_trips() {
    let env = Env::new().await;
    let env = tokio::task::spawn_blocking(move || {
        admin_round_trip(&env);
        env
    })
    .await
    .unwrap();
    // The data key lives in the data directory on either engine; the SQLite file only
    // when SQLite holds the data.
    assert!(env.dir.path().join("data.key").exists());
    assert_eq!(
        env.dir.path().join("tocsin.db").exists(),
        env.engine == Engine::Sqlite
    );
}

#[tokio::test]
async fn a_bad_config_value_stops_start_up_naming_the_key() {
    let env = Env::new().await;
    let out = env
        .command()
        .env("TOCSIN__SERVER__HTTP_ADDR", "nowhere")
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("http_addr"), "{stderr}");
}

#[tokio::test]
async fn serve_answers_health_and_stops_cleanly_on_sigterm() {
    let env = Env::new().await;
    tokio::task::spawn_blocking(move || serve_and_stop(&env))
        .await
        .unwrap();
}

fn serve_and_stop(env: &Env) {
    let mut child = env
        .command()
        .arg("serve")
        .env("TOCSIN__LOG__LEVEL", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("server exited before serving").unwrap();
        if let Some(rest) = line.split("http=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let body = std::thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        use std::io::{Read, Write};
        write!(
            stream,
            "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    })
    .join()
    .unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.ends_with("\r\n\r\nok"), "{body}");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "serve must exit 0 after SIGTERM, got {status}"
    );
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.contains("SIGTERM received")),
        "{rest:?}"
    );
}

/// The data directory and every file the binary makes in it are its owner's alone, and a
/// key file others may read is refused with the command that fixes it.
#[tokio::test]
async fn what_the_server_keeps_is_its_owners_alone() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new().await;
    let data = env.dir.path().join("data");
    let run = |args: &[&str]| {
        let mut cmd = env.command();
        cmd.env("TOCSIN__STORAGE__DATA_DIR", &data)
            .arg("admin")
            .args(args);
        cmd.output().unwrap()
    };
    let created = run(&["account", "create", "acme", "--credits", "5"]);
    assert!(created.status.success(), "{created:?}");
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(
            mode(&path) & 0o077,
            0,
            "{} is mode {:o}",
            path.display(),
            mode(&path)
        );
        files.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    assert!(files.contains(&"data.key".to_owned()), "{files:?}");
    if env.engine == Engine::Sqlite {
        assert!(files.contains(&"tocsin.db".to_owned()), "{files:?}");
    }

    let key = data.join("data.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = run(&["account", "show", "acme"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("can be read by others") && stderr.contains("chmod 600"),
        "{stderr}"
    );
}
