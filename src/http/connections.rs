//! A cap on the connections one address holds open at once (`server.connections_per_ip`).
//!
//! Every connection the HTTP listener accepts takes a [`Slot`] for its peer's address when
//! it is made, kept in the connection's data and given back when the connection ends. A
//! connection made while its address already held the cap is marked: its first request
//! is answered 429 and the connection is closed. A connection that never sends a request
//! is closed by the server's deadline for the request head. Trusted reverse proxies are
//! not counted: many clients share their connections.

use std::any::Any;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use actix_web::dev::Extensions;
use actix_web::{HttpRequest, HttpResponse};

use crate::client_ip::TrustedProxies;
use crate::ratelimit::client_key;

/// Open connections per address.
#[derive(Debug)]
pub struct ConnectionCounts {
    cap: usize,
    proxies: Arc<TrustedProxies>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in the count, given back on drop.
#[derive(Debug)]
pub struct Slot {
    counts: Arc<ConnectionCounts>,
    key: IpAddr,
    /// Made while the address already held the cap.
    over: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.counts.lock();
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

impl ConnectionCounts {
    /// `cap` connections per address (0: none is counted).
    pub fn new(cap: usize, proxies: Arc<TrustedProxies>) -> Arc<Self> {
        Arc::new(Self {
            cap,
            proxies,
            open: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a slot for a connection from `peer`; `None` when nothing is counted for it.
    pub fn take(self: &Arc<Self>, peer: IpAddr) -> Option<Slot> {
        if self.cap == 0 || self.proxies.trusts(peer) {
            return None;
        }
        let key = client_key(peer);
        let mut open = self.lock();
        let held = open.entry(key).or_default();
        let over = *held >= self.cap;
        *held += 1;
        Some(Slot {
            counts: Arc::clone(self),
            key,
            over,
        })
    }

    /// Connections open from `peer`'s address (its /64 for IPv6).
    pub fn open_from(&self, peer: IpAddr) -> usize {
        self.lock().get(&client_key(peer)).copied().unwrap_or(0)
    }

    /// For `HttpServer::on_connect`: takes a slot for a new connection, whose stream is
    /// `io` (plain TCP, or TLS over TCP once the handshake is done), and keeps it in the
    /// connection's data.
    pub fn on_connect(self: &Arc<Self>, io: &dyn Any, data: &mut Extensions) {
        if let Some(slot) = peer_of(io).and_then(|peer| self.take(peer.ip())) {
            data.insert(Arc::new(slot));
        }
    }
}

/// The peer's address of a connection's stream: the TCP stream itself, or the one under
/// TLS. Another stream type would go uncounted, so each listener kind is listed here.
fn peer_of(io: &dyn Any) -> Option<SocketAddr> {
    use actix_tls::accept::rustls_0_23::TlsStream;
    use actix_web::rt::net::TcpStream;
    if let Some(tcp) = io.downcast_ref::<TcpStream>() {
        return tcp.peer_addr().ok();
    }
    let tls = io.downcast_ref::<TlsStream<TcpStream>>()?;
    tls.get_ref().0.peer_addr().ok()
}

/// The answer for a request on a connection past the cap, if it is one.
pub fn refusal(req: &HttpRequest) -> Option<HttpResponse> {
    let over = req.conn_data::<Arc<Slot>>().is_some_and(|slot| slot.over);
    over.then(|| {
        HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", "1"))
            .content_type("text/plain; charset=utf-8")
            .force_close()
            .body("too many connections from this address")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_past_the_cap_are_marked_and_given_back_on_drop() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let proxies = Arc::new(TrustedProxies::new(&["10.0.0.1".to_owned()]).unwrap());
        let counts = ConnectionCounts::new(2, proxies);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let first = counts.take(a).unwrap();
        let second = counts.take(a).unwrap();
        let third = counts.take(a).unwrap();
        assert_eq!((first.over, second.over, third.over), (false, false, true));
        assert!(!counts.take("192.0.2.2".parse().unwrap()).unwrap().over);
        // IPv6 addresses of one /64 share a count.
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        let (_x, _y) = (
            counts.take(v6("2001:db8::1")),
            counts.take(v6("2001:db8::2")),
        );
        assert!(counts.take(v6("2001:db8::ffff")).unwrap().over);
        assert!(
            counts.take(proxy).is_none(),
            "a trusted proxy is not counted"
        );
        drop(third);
        drop(first);
        assert_eq!(counts.open_from(a), 1);
        assert!(!counts.take(a).unwrap().over);
        drop(second);
        assert_eq!(counts.open_from(a), 0);
        let off = ConnectionCounts::new(0, Arc::default());
        assert!(off.take(a).is_none());
    }
}
