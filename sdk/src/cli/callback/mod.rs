//! `tocsin-cli callback serve`: a small HTTP server that takes, for one gateway ID, the
//! gateway's callbacks (end-to-end IDs: replies and receipts, decrypted with the private
//! key) and its status events (any ID: what became of its messages), and prints each as
//! one line; it optionally saves received files.
//!
//! It speaks plain HTTP/1.1 (hyper), meant for loopback or behind a TLS-terminating
//! proxy. A request with an `X-Tocsin-Signature` header is a status event and goes
//! through [`crate::receive::StatusReceiver`]; any other through
//! [`crate::receive::CallbackReceiver`]. Either side works without the other's
//! credentials; see `handle` for what is answered when.

mod handle;
mod status;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::setup::{self, Settings};
use super::Failure;
use crate::client::E2eClient;
use crate::receive::{CallbackReceiver, ReceiverOptions, StatusReceiver};
use handle::{Callbacks, Handler};

/// Time a client has to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

const AFTER_HELP: &str = "\
Set the gateway ID's callback URL, its status URL, or both, to http://ADDR/ (any path
is accepted). Each authentic callback message is printed as one line on standard output:
  TIME SENDER MESSAGE-ID KIND DETAIL
where KIND is text, receipt (status and message IDs), file (name, type, size), image
or location. Each status event (a request signed in X-Tocsin-Signature) is printed as
  TIME status TYPE MESSAGE-ID RECIPIENT
where TYPE is message.delivered, message.read, message.acknowledged, message.declined
or message.expired, or, for an alarm, as
  TIME status TYPE ALARM-ID DETAIL
where TYPE and DETAIL are alarm.triggered (priority critical, 2 tiers), alarm.escalated
(tier 2: RECIPIENTS, and those unpaid), alarm.answered (RESPONDER coming eta 5m note:
TEXT), alarm.acknowledged (coming: RESPONDERS), alarm.resolved or alarm.expired (no
DETAIL). TIME is when that happened. Warnings and refused requests go to standard
error.

Answers: 200 when taken (also for a message or event already taken, for a message that
cannot be decrypted and for an event of a type this version does not know, because a
retry would not help); 401 for a wrong MAC or signature; 400 for a malformed,
misaddressed or stale request; 413 for a body over 16 KiB; 503 when the sender's key
or a file cannot be fetched right now, or when the credentials for that kind of request
were not given, so that the gateway delivers it again.

Credentials: --from or TOCSIN_GATEWAY_ID. For callbacks: the API secret (TOCSIN_SECRET
or --secret-file) for the MAC and the gateway API, and the private key
(TOCSIN_PRIVATE_KEY or --private-key-file) to decrypt; sender keys come from the
gateway (GET /pubkeys/ID). For status events: the status URL's signing secret
(TOCSIN_STATUS_SECRET or --status-secret-file). Without a private key (a basic-mode
gateway ID), only status events are taken.";

/// `tocsin-cli callback …`.
#[derive(Debug, Args)]
pub(crate) struct CallbackArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: CallbackCommand,
}

/// The callback subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum CallbackCommand {
    /// Listen for callbacks and status events and print each; Ctrl-C stops.
    #[command(after_help = AFTER_HELP)]
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8443 (port 0 picks a free one; the
        /// address is printed on standard error).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// Download the files of file messages into DIR (created if missing).
        #[arg(long, value_name = "DIR")]
        files: Option<PathBuf>,
        /// Refuse messages dated, and status events signed, more than SECONDS ago (0:
        /// accept any age).
        #[arg(long, value_name = "SECONDS", default_value_t = 300)]
        max_age: u64,
        /// File holding the status URL's signing secret (instead of
        /// TOCSIN_STATUS_SECRET).
        #[arg(long, value_name = "PATH")]
        status_secret_file: Option<PathBuf>,
    },
}

/// What the error for missing credentials adds, so that an operator of a basic-mode
/// gateway ID finds the way.
const STATUS_ONLY: &str = "; to take status events only, set TOCSIN_STATUS_SECRET or pass \
     --status-secret-file PATH";

/// Runs `callback serve` on a single-threaded runtime until Ctrl-C.
///
/// With a private key, callbacks are taken (the API secret is then needed too); with a
/// status secret, status events; with neither, nothing could be taken, which is a usage
/// error.
pub(crate) fn run(settings: &Settings, args: CallbackArgs) -> Result<(), Failure> {
    let CallbackCommand::Serve {
        listen,
        files,
        max_age,
        status_secret_file,
    } = args.command;
    let options = ReceiverOptions {
        max_age: (max_age > 0).then(|| Duration::from_secs(max_age)),
        ..ReceiverOptions::default()
    };
    let own = settings.gateway_id()?;
    let status = setup::status_secret(status_secret_file.as_deref())?
        .map(|secret| StatusReceiver::with_options(own, secret, options.clone()));
    let callbacks = match settings.given_private_key()? {
        Some(key) => {
            let receiver = CallbackReceiver::with_options(own, settings.secret()?, options);
            let e2e = E2eClient::new(settings.client()?, key);
            Some(Callbacks::new(receiver, e2e, files))
        }
        None if status.is_some() => {
            if files.is_some() {
                handle::note("warning: --files is of no use without the private key");
            }
            None
        }
        None => {
            settings.secret().map_err(|f| f.adding(STATUS_ONLY))?;
            return Err(Failure::usage(format!(
                "no private key: set TOCSIN_PRIVATE_KEY or pass --private-key-file PATH\
                 {STATUS_ONLY}"
            )));
        }
    };
    let handler = Arc::new(Handler::new(own, callbacks, status));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(serve(handler, listen))
}

async fn serve(handler: Arc<Handler>, addr: SocketAddr) -> Result<(), Failure> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::new(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::new(format!("cannot listen on {addr}: {e}")))?;
    handle::note(format!(
        "listening on http://{bound}/ for {}",
        handler.takes()
    ));
    let stop = async {
        // Without a Ctrl-C handler the default action ends the process, which is fine.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            () = &mut stop => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                handle::note(format!("warning: cannot accept a connection: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let handler = handler.clone();
                async move { Ok::<_, std::convert::Infallible>(handler.handle(request).await) }
            });
            // A connection that breaks off is the client's business.
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
