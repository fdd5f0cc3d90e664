//! Waiting for the operator's stop signal.

use std::future::Future;

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
///
/// The handlers are installed when this is called, not when the future is first polled:
/// a signal that comes once the caller has gone on (e.g. right after the server said it
/// is serving) stops the server gracefully instead of killing the process. Call it from
/// within the Tokio runtime.
pub fn wait_for_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            tokio::select! {
                () = recv(interrupt, "SIGINT") => tracing::info!("SIGINT received, shutting down"),
                () = recv(terminate, "SIGTERM") => tracing::info!("SIGTERM received, shutting down"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => tracing::info!("Ctrl-C received, shutting down"),
            Err(e) => {
                tracing::error!("cannot listen for Ctrl-C: {e}");
                std::future::pending::<()>().await;
            }
        }
    }
}

/// The next signal of `stream`; never, if its handler could not be installed.
#[cfg(unix)]
async fn recv(stream: std::io::Result<tokio::signal::unix::Signal>, name: &str) {
    match stream {
        Ok(mut stream) => {
            stream.recv().await;
        }
        Err(e) => {
            tracing::error!("cannot listen for {name}: {e}");
            std::future::pending::<()>().await;
        }
    }
}
