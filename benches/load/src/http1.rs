//! The harness's own HTTP/1.1 client: keep-alive connections driven by hyper directly,
//! without a general-purpose client's pool, proxy lookup and retry layers.
//!
//! The harness shares the cores with the server it measures, so every microsecond it
//! spends per request is taken from the server. A closed-loop worker owns one connection
//! ([`Conn`]); requests sent at a fixed rate borrow one from a [`Pool`].

use std::net::SocketAddr;
use std::sync::Mutex;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;

/// Why a request got no HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The TCP connection could not be opened.
    Connect,
    /// The connection failed while the request was sent or its answer read.
    Transport,
}

/// Where requests go: the server's address, the `Host` header it expects and the base
/// URL's path, which request paths are appended to.
#[derive(Debug, Clone)]
pub struct Target {
    addr: SocketAddr,
    host: HeaderValue,
    prefix: String,
}

impl Target {
    /// The address of a base URL such as `http://127.0.0.1:8080` (plain HTTP only).
    pub async fn resolve(base_url: &str) -> Result<Self, String> {
        let url = url::Url::parse(base_url).map_err(|e| format!("--url {base_url}: {e}"))?;
        if url.scheme() != "http" {
            return Err(format!(
                "--url {base_url}: the send scenarios speak plain http:// only"
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| format!("--url {base_url}: no host"))?;
        let port = url.port_or_known_default().unwrap_or(80);
        let addr = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("--url {base_url}: {e}"))?
            .next()
            .ok_or_else(|| format!("--url {base_url}: {host} has no address"))?;
        let host = HeaderValue::from_str(&format!("{host}:{port}"))
            .map_err(|e| format!("--url {base_url}: {e}"))?;
        let prefix = url.path().trim_end_matches('/').to_owned();
        Ok(Self { addr, host, prefix })
    }

    /// `path` (with its query, if any) under the base URL, as a request target.
    pub fn uri(&self, path: &str) -> Result<Uri, String> {
        let full = format!("{}{path}", self.prefix);
        full.parse()
            .map_err(|e| format!("request path {full}: {e}"))
    }
}

/// One keep-alive connection; requests on it go one after the other.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    pub async fn open(target: &Target) -> Result<Self, Failure> {
        let stream = tokio::net::TcpStream::connect(target.addr)
            .await
            .map_err(|_| Failure::Connect)?;
        // Requests are small and answered at once; don't let them wait for ACKs.
        stream.set_nodelay(true).map_err(|_| Failure::Connect)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| Failure::Connect)?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes the connection.
            let _ = connection.await;
        });
        Ok(Self { sender })
    }

    /// POSTs a form body and reads the whole answer; returns its status code.
    pub async fn post_form(
        &mut self,
        target: &Target,
        uri: &Uri,
        body: String,
    ) -> Result<u16, Failure> {
        self.sender.ready().await.map_err(|_| Failure::Transport)?;
        let request = Request::post(uri.clone())
            .header(HOST, target.host.clone())
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| Failure::Transport)?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|_| Failure::Transport)?;
        let status = response.status().as_u16();
        response
            .into_body()
            .collect()
            .await
            .map_err(|_| Failure::Transport)?;
        Ok(status)
    }

    /// Whether the connection can carry another request.
    pub fn is_open(&self) -> bool {
        !self.sender.is_closed()
    }
}

/// Connections for requests that overlap in no fixed pattern (the open loop): a request
/// takes an idle one or opens a new one, and gives it back once answered.
pub struct Pool {
    target: Target,
    idle: Mutex<Vec<Conn>>,
}

impl Pool {
    pub fn new(target: Target) -> Self {
        Self {
            target,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub async fn post_form(&self, uri: &Uri, body: String) -> Result<u16, Failure> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => Conn::open(&self.target).await?,
        };
        let outcome = conn.post_form(&self.target, uri, body).await;
        if outcome.is_ok() && conn.is_open() {
            self.idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(conn);
        }
        outcome
    }
}
