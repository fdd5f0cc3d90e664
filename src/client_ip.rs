//! The client's address, which rate limits and quotas key on. It is the TCP peer, unless
//! that peer is a reverse proxy the operator trusts (`server.trusted_proxies`): then the
//! address the proxies recorded (`X-Forwarded-For`, else `Forwarded`) is read from the
//! right, and the first hop that is not a trusted proxy is the client. Headers from any
//! other peer are ignored, so a client cannot choose its own address.

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

/// The reverse proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Parses CIDR ranges (`10.0.0.0/8`, `::1/128`); `Err` names the bad one.
    pub fn new(ranges: &[String]) -> Result<Self, String> {
        let nets = ranges
            .iter()
            .map(|r| {
                r.parse::<IpNet>()
                    .or_else(|_| r.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{r:?} is not an address or a CIDR range"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { nets })
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for `req` (see the module docs).
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        if !self.trusts(peer) {
            return Some(peer);
        }
        let hops = forwarded_for(req);
        // From the nearest hop outwards: the first one no trusted proxy stands for.
        let client = hops.iter().rev().find(|hop| !self.trusts(**hop));
        Some(client.or(hops.first()).copied().unwrap_or(peer))
    }
}

/// The addresses the proxies recorded, client first: `X-Forwarded-For`, or the `for=`
/// elements of `Forwarded`. Entries that are not addresses (`unknown`, obfuscated names)
/// end the list read so far, as they cannot be trusted past.
fn forwarded_for(req: &HttpRequest) -> Vec<IpAddr> {
    let headers = req.headers();
    let joined = |name: &str| {
        let values: Vec<&str> = headers
            .get_all(name)
            .filter_map(|v| v.to_str().ok())
            .collect();
        values.join(",")
    };
    let xff = joined("x-forwarded-for");
    let entries: Vec<String> = if !xff.trim().is_empty() {
        xff.split(',').map(|e| e.trim().to_owned()).collect()
    } else {
        joined("forwarded")
            .split(',')
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (key, value) = pair.trim().split_once('=')?;
                    key.eq_ignore_ascii_case("for")
                        .then(|| value.trim().trim_matches('"').to_owned())
                })
            })
            .collect()
    };
    entries.iter().filter_map(|e| parse_hop(e)).collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1` or `[2001:db8::1]:4711`.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse() {
        return Some(ip);
    }
    if let Some(rest) = entry.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    entry.rsplit_once(':')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn proxies() -> TrustedProxies {
        TrustedProxies::new(&["10.0.0.0/8".to_owned(), "::1".to_owned()]).unwrap()
    }

    fn from(peer: &str) -> TestRequest {
        TestRequest::default().peer_addr(peer.parse().unwrap())
    }

    #[test]
    fn a_trusted_proxys_headers_name_the_client_and_no_one_elses_do() {
        let p = proxies();
        let ip = |req: TestRequest| p.client_ip(&req.to_http_request()).unwrap().to_string();
        // Not a proxy: its own address, whatever it claims.
        let direct = from("203.0.113.7:5000").insert_header(("x-forwarded-for", "198.51.100.1"));
        assert_eq!(ip(direct), "203.0.113.7");
        // Through one proxy.
        let one = from("10.0.0.2:5000").insert_header(("x-forwarded-for", "198.51.100.1"));
        assert_eq!(ip(one), "198.51.100.1");
        // A client that forges the header: the right-most untrusted hop wins.
        let forged = from("10.0.0.2:5000")
            .insert_header(("x-forwarded-for", "127.0.0.1, 198.51.100.1, 10.0.0.3"));
        assert_eq!(ip(forged), "198.51.100.1");
        // Forwarded, with a port and an IPv6 address.
        let rfc = from("[::1]:5000").insert_header((
            "forwarded",
            "for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.9",
        ));
        assert_eq!(ip(rfc), "2001:db8::7");
        // A proxy that forwards nothing: itself.
        assert_eq!(ip(from("10.0.0.2:5000")), "10.0.0.2");
        assert!(TrustedProxies::new(&["nope".to_owned()]).is_err());
    }
}
