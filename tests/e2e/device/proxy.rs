//! A TCP relay between a device and the server that the test controls: it can hold each
//! new connection until released, cut one (both sockets closed) or stall it (sockets kept
//! open, nothing forwarded any more), the way a network fails, and it can be pointed at
//! another server address (a restarted server listens on a new port). Between a server
//! and its database it makes the database fall silent.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use super::PATIENCE;

/// What the test does with an established relay.
pub enum Fault {
    /// Close both sides.
    Cut,
    /// Stop forwarding but keep both sides open.
    Stall,
}

/// One connection the relay accepted, waiting for the test.
pub struct Relayed {
    release: Option<oneshot::Sender<()>>,
    fault: Option<oneshot::Sender<Fault>>,
}

impl Relayed {
    /// Lets the connection through to the server.
    pub fn release(&mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.send(());
        }
    }

    /// Breaks the connection.
    pub fn fail(&mut self, fault: Fault) {
        if let Some(sender) = self.fault.take() {
            let _ = sender.send(fault);
        }
    }
}

/// The relay and the connections it accepted, in order.
pub struct Proxy {
    pub addr: SocketAddr,
    upstream: Arc<Mutex<SocketAddr>>,
    accepted: mpsc::UnboundedReceiver<Relayed>,
    /// Every connection from now on is held, never relayed.
    silent: Arc<AtomicBool>,
}

impl Proxy {
    /// Starts relaying from a fresh loopback port to `server`. With `hold`, each
    /// connection waits for [`Relayed::release`]; otherwise it goes through at once.
    pub async fn start(server: SocketAddr, hold: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = Arc::new(Mutex::new(server));
        let target = upstream.clone();
        let (report, accepted) = mpsc::unbounded_channel();
        let silent = Arc::new(AtomicBool::new(false));
        let quiet = silent.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (release, released) = oneshot::channel();
                let (fault, faulted) = oneshot::channel();
                let mut relayed = Relayed {
                    release: Some(release),
                    fault: Some(fault),
                };
                if !hold && !quiet.load(Ordering::SeqCst) {
                    relayed.release();
                }
                if report.send(relayed).is_err() {
                    return;
                }
                let server = *target.lock().unwrap();
                tokio::spawn(relay(client, server, released, faulted));
            }
        });
        Self {
            addr,
            upstream,
            accepted,
            silent,
        }
    }

    /// Stalls every connection not yet taken with [`Proxy::next`] and holds every new
    /// one: the server behind stops answering, and nothing is closed.
    pub fn fall_silent(&mut self) {
        self.silent.store(true, Ordering::SeqCst);
        while let Ok(mut relayed) = self.accepted.try_recv() {
            relayed.fail(Fault::Stall);
        }
    }

    /// Relays new connections to `server` from now on.
    pub fn point_to(&self, server: SocketAddr) {
        *self.upstream.lock().unwrap() = server;
    }

    /// The base URL of the relay.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The next connection a client made.
    pub async fn next(&mut self) -> Relayed {
        tokio::time::timeout(PATIENCE, self.accepted.recv())
            .await
            .expect("a connection in time")
            .expect("the relay is running")
    }
}

async fn relay(
    mut client: TcpStream,
    server: SocketAddr,
    released: oneshot::Receiver<()>,
    faulted: oneshot::Receiver<Fault>,
) {
    if released.await.is_err() {
        return;
    }
    let Ok(mut upstream) = TcpStream::connect(server).await else {
        return;
    };
    // A dropped handle means no fault will ever come.
    let fault = async {
        match faulted.await {
            Ok(fault) => fault,
            Err(_) => std::future::pending().await,
        }
    };
    let fault = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => return,
        fault = fault => fault,
    };
    if let Fault::Stall = fault {
        // Keep both sockets open and silent until the test ends.
        std::future::pending::<()>().await;
    }
}
