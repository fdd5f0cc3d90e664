//! `tocsin-cli callback serve`: a small HTTP server that takes the gateway's callbacks
//! for one end-to-end gateway ID, prints each message as one line, and optionally saves
//! received files.
//!
//! It speaks plain HTTP/1.1 (hyper), meant for loopback or behind a TLS-terminating
//! proxy. Every request goes through [`crate::receive::CallbackReceiver`]; see
//! `handle` for what is answered when.

mod handle;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::setup::Settings;
use super::Failure;
use crate::receive::{CallbackReceiver, ReceiverOptions};
use handle::Handler;

/// Time a client has to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

const AFTER_HELP: &str = "\
Set the gateway ID's callback URL to http://ADDR/ (any path is accepted). Each
authentic message is printed as one line on standard output:
  TIME SENDER MESSAGE-ID KIND DETAIL
where KIND is text, receipt (status and message IDs), file (name, type, size), image
or location. Warnings and refused requests go to standard error.

Answers: 200 when taken (also for a message already taken, and for one that cannot be
decrypted, because a retry would not help); 401 for a wrong MAC; 400 for a malformed,
misaddressed or stale callback; 413 for a body over 16 KiB; 503 when the sender's key
or a file cannot be fetched right now, so that the gateway delivers it again.

Credentials: --from or TOCSIN_GATEWAY_ID, the API secret (TOCSIN_SECRET or
--secret-file) for the MAC and the gateway API, the private key (TOCSIN_PRIVATE_KEY or
--private-key-file) to decrypt. Sender keys come from the gateway (GET /pubkeys/ID).";

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
    /// Listen for callbacks and print every message; Ctrl-C stops.
    #[command(after_help = AFTER_HELP)]
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8443 (port 0 picks a free one; the
        /// address is printed on standard error).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// Download the files of file messages into DIR (created if missing).
        #[arg(long, value_name = "DIR")]
        files: Option<PathBuf>,
        /// Refuse messages dated more than SECONDS ago (0: accept any age).
        #[arg(long, value_name = "SECONDS", default_value_t = 300)]
        max_age: u64,
    },
}

/// Runs `callback serve` on a single-threaded runtime until Ctrl-C.
pub(crate) fn run(settings: &Settings, args: CallbackArgs) -> Result<(), Failure> {
    let CallbackCommand::Serve {
        listen,
        files,
        max_age,
    } = args.command;
    let options = ReceiverOptions {
        max_age: (max_age > 0).then(|| Duration::from_secs(max_age)),
        ..ReceiverOptions::default()
    };
    let receiver =
        CallbackReceiver::with_options(settings.gateway_id()?, settings.secret()?, options);
    let e2e = settings.e2e_client()?;
    let handler = Arc::new(Handler::new(receiver, e2e, files));
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
        "listening on http://{bound}/ for callbacks to {}",
        handler.gateway_id()
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
