//! Which addresses a callback may reach.
//!
//! Customers choose callback URLs, so without a guard the server would POST wherever they
//! point it: its own admin ports, the cloud metadata service, the office network. Every
//! destination address is checked twice: when the URL is saved (literal addresses and names
//! that resolve now) and again when connecting (the resolver below drops forbidden
//! addresses, so DNS answers that change later do not get through). Redirects are never
//! followed. Ranges an operator explicitly allows in config are exempt.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The address policy: everything public, plus the ranges the operator allowed; on the
/// ports the operator allowed (any, when none are listed).
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allowed: Vec<IpNet>,
    ports: Vec<u16>,
}

/// Why an address is refused, for messages: every range of the IANA special-purpose
/// registries that is not globally reachable, and the IPv6 forms that carry an IPv4
/// address inside (whose IPv4 part a relay or translator would reach).
fn forbidden_kind(ip: IpAddr) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_private() {
                Some("private")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if v4.is_unspecified() || a == 0 {
                Some("unspecified")
            } else if a == 100 && (64..128).contains(&b) {
                Some("shared (carrier-grade NAT)")
            } else if a == 198 && (18..20).contains(&b) {
                Some("benchmarking")
            } else if (a, b, c) == (192, 0, 0) || (a, b, c) == (192, 88, 99) {
                Some("protocol-assignment or relay")
            } else if matches!((a, b, c), (192, 0, 2) | (198, 51, 100) | (203, 0, 113)) {
                Some("documentation")
            } else if v4.is_multicast() || v4.is_broadcast() || a >= 240 {
                Some("multicast or reserved")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if s[..6] == [0; 6] {
                Some("IPv4-compatible")
            } else if s[..4] == [0; 4] && s[4] == 0xffff {
                Some("IPv4-translated")
            } else if (s[0], s[1]) == (0x64, 0xff9b) {
                Some("NAT64 (embeds an IPv4 address)")
            } else if s[0] == 0x2002 {
                Some("6to4 (embeds an IPv4 address)")
            } else if (s[0], s[1]) == (0x2001, 0) {
                Some("Teredo (embeds an IPv4 address)")
            } else if (s[0], s[1]) == (0x2001, 0xdb8) {
                Some("documentation")
            } else if s[0] == 0x0100 && s[1..4] == [0, 0, 0] {
                Some("discard-only")
            } else if (s[0], s[1]) == (0x2001, 0x2) && s[2] == 0 {
                Some("benchmarking")
            } else if s[0] & 0xfe00 == 0xfc00 {
                Some("unique-local")
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if s[0] & 0xffc0 == 0xfec0 {
                Some("site-local")
            } else if v6.is_multicast() {
                Some("multicast")
            } else {
                None
            }
        }
    }
}

impl AddressPolicy {
    /// Parses the allowed ranges (CIDR notation, e.g. `127.0.0.0/8`); `ports` are the
    /// ports callbacks may use (empty: any).
    pub fn new(allowed: &[String], ports: &[u16]) -> Result<Self, String> {
        let allowed = allowed
            .iter()
            .map(|r| {
                r.parse::<IpNet>()
                    .map_err(|_| format!("{r:?} is not a CIDR range such as 127.0.0.0/8"))
            })
            .collect::<Result<_, _>>()?;
        if ports.contains(&0) {
            return Err("port 0 cannot be reached".into());
        }
        Ok(Self {
            allowed,
            ports: ports.to_vec(),
        })
    }

    /// `Err` with the reason when callbacks may not go to `port` of `host`. A literal
    /// address of an allowed range may use any port: the operator allowed it whole.
    fn check_port(&self, host: &url::Host<&str>, port: u16) -> Result<(), String> {
        let literal = match host {
            url::Host::Ipv4(ip) => Some(IpAddr::V4(*ip)),
            url::Host::Ipv6(ip) => Some(IpAddr::V6(*ip)),
            url::Host::Domain(_) => None,
        };
        let in_allowed_range =
            literal.is_some_and(|ip| self.allowed.iter().any(|net| net.contains(&ip)));
        if self.ports.is_empty() || self.ports.contains(&port) || in_allowed_range {
            return Ok(());
        }
        let listed: Vec<String> = self.ports.iter().map(u16::to_string).collect();
        Err(format!(
            "port {port} is not one callbacks may use ({}; callbacks.allowed_ports)",
            listed.join(", ")
        ))
    }

    /// `Err` with the reason when callbacks may not go to `ip`.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        if self.allowed.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        match forbidden_kind(ip) {
            Some(kind) => Err(format!("{ip} is a {kind} address")),
            None => Ok(()),
        }
    }
}

/// A resolver that hands reqwest only permitted addresses. The configured proxy's own name
/// (`proxy_host`) resolves unchecked: the operator chose it, and it is usually internal.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub policy: Arc<AddressPolicy>,
    pub proxy_host: Option<String>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        let exempt = self
            .proxy_host
            .as_deref()
            .is_some_and(|proxy| proxy.eq_ignore_ascii_case(&host));
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if exempt {
                let addrs: Addrs = Box::new(resolved.into_iter());
                return Ok(addrs);
            }
            let permitted: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|a| policy.check(a.ip()).is_ok())
                .collect();
            if permitted.is_empty() {
                let why = resolved.first().map_or_else(
                    || "no address".to_owned(),
                    |a| policy.check(a.ip()).unwrap_err(),
                );
                return Err(format!("callback host {host} refused: {why}").into());
            }
            let addrs: Addrs = Box::new(permitted.into_iter());
            Ok(addrs)
        })
    }
}

/// Checks a callback URL when it is saved: scheme, no credentials, and a literal or
/// currently resolving host that the policy permits. A name that does not resolve now is
/// accepted (the connect-time check still applies).
pub async fn check_url(raw: &str, policy: &AddressPolicy) -> Result<String, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("callback URL {raw:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "callback URL must use http or https, not {}",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "callback URL must not carry credentials; the MAC authenticates each request".into(),
        );
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let host = url.host().ok_or("callback URL needs a host")?;
    policy.check_port(&host, port)?;
    match host {
        url::Host::Ipv4(ip) => policy.check(IpAddr::V4(ip))?,
        url::Host::Ipv6(ip) => policy.check(IpAddr::V6(ip))?,
        url::Host::Domain(name) => {
            if let Ok(addrs) = tokio::net::lookup_host((name, port)).await {
                for addr in addrs {
                    policy
                        .check(addr.ip())
                        .map_err(|why| format!("{name} resolves to {why}"))?;
                }
            }
        }
    }
    Ok(url.to_string())
}

/// Checks a callback's destination right before it is sent: its port, and its host when
/// that is a literal address (names are checked by [`GuardedResolver`] as they resolve).
/// Through a proxy nothing here resolves the target, so `resolve` makes this resolve the
/// name and check every address; the proxy resolves it again, so operators should have
/// the proxy refuse internal destinations as well.
pub async fn check_destination(
    url: &url::Url,
    policy: &AddressPolicy,
    resolve: bool,
) -> Result<(), String> {
    let port = url.port_or_known_default().unwrap_or(443);
    let host = url.host().ok_or("callback URL needs a host")?;
    policy.check_port(&host, port)?;
    match host {
        url::Host::Ipv4(ip) => policy.check(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => policy.check(IpAddr::V6(ip)),
        url::Host::Domain(name) if resolve => {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| format!("{name} does not resolve: {e}"))?
                .collect();
            if addrs.is_empty() {
                return Err(format!("{name} does not resolve"));
            }
            for addr in addrs {
                policy
                    .check(addr.ip())
                    .map_err(|why| format!("{name} resolves to {why}"))?;
            }
            Ok(())
        }
        url::Host::Domain(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: &AddressPolicy, ip: &str) -> bool {
        policy.check(ip.parse().unwrap()).is_err()
    }

    #[test]
    fn internal_ranges_are_refused_and_public_ones_pass() {
        let p = AddressPolicy::default();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::",
            // IPv6 forms that carry an IPv4 address: compatible, NAT64, 6to4, Teredo.
            "::127.0.0.1",
            "::10.0.0.1",
            "::ffff:0:a00:1",
            "64:ff9b::7f00:1",
            "64:ff9b::808:808",
            "64:ff9b:1::a00:1",
            "2002:7f00:1::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            // Other special-purpose ranges.
            "fec0::1",
            "2001:db8::1",
            "100::1",
            "2001:2::1",
            "198.18.0.1",
            "198.19.255.254",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "192.88.99.1",
        ] {
            assert!(refused(&p, ip), "{ip} must be refused");
        }
        for ip in [
            "93.184.216.34",
            "2606:4700::1111",
            "8.8.8.8",
            "198.20.0.1",
            "2001:4860:4860::8888",
            "2003::1",
        ] {
            assert!(!refused(&p, ip), "{ip} must pass");
        }
    }

    #[test]
    fn allowed_ranges_are_exempt_and_bad_ranges_are_named() {
        let p = AddressPolicy::new(&["127.0.0.0/8".to_owned()], &[]).unwrap();
        assert!(!refused(&p, "127.0.0.1"));
        assert!(refused(&p, "10.0.0.1"));
        assert!(AddressPolicy::new(&["nonsense".to_owned()], &[])
            .unwrap_err()
            .contains("nonsense"));
        assert!(AddressPolicy::new(&[], &[443, 0]).is_err());
    }

    #[tokio::test]
    async fn callbacks_use_the_allowed_ports_but_allowed_literal_ranges_use_any() {
        let p = AddressPolicy::new(&["127.0.0.0/8".to_owned()], &[80, 443, 8080, 8443]).unwrap();
        for ok in [
            "https://hooks.example.org/x",
            "http://hooks.example.org/x",
            "https://hooks.example.org:8443/x",
            "http://127.0.0.1:39000/cb",
        ] {
            assert!(check_url(ok, &p).await.is_ok(), "{ok}");
            let url = url::Url::parse(ok).unwrap();
            assert!(check_destination(&url, &p, false).await.is_ok(), "{ok}");
        }
        for refused in [
            "http://hooks.example.org:22/x",
            "https://93.184.215.14:6379/x",
            "http://localhost:39000/cb",
        ] {
            let why = check_url(refused, &p).await.unwrap_err();
            assert!(why.contains("callbacks.allowed_ports"), "{refused}: {why}");
            let url = url::Url::parse(refused).unwrap();
            let why = check_destination(&url, &p, false).await.unwrap_err();
            assert!(why.starts_with("port "), "{refused}: {why}");
        }
        // Through a proxy, a name is resolved and checked before the request is sent.
        let strict = AddressPolicy::new(&[], &[]).unwrap();
        let local = url::Url::parse("http://localhost:9/cb").unwrap();
        assert!(check_destination(&local, &strict, false).await.is_ok());
        let why = check_destination(&local, &strict, true).await.unwrap_err();
        assert!(why.contains("localhost resolves to"), "{why}");
    }

    #[tokio::test]
    async fn urls_are_checked_when_saved() {
        let p = AddressPolicy::default();
        assert!(check_url("http://127.0.0.1:8080/cb", &p)
            .await
            .unwrap_err()
            .contains("loopback"));
        assert!(check_url("http://10.0.0.5/cb", &p)
            .await
            .unwrap_err()
            .contains("private"));
        assert!(check_url("http://[fd00::5]/cb", &p)
            .await
            .unwrap_err()
            .contains("unique-local"));
        assert!(check_url("http://169.254.169.254/latest", &p)
            .await
            .unwrap_err()
            .contains("link-local"));
        assert!(check_url("http://localhost:9/cb", &p)
            .await
            .unwrap_err()
            .contains("localhost resolves to"));
        assert!(check_url("ftp://example.org/", &p)
            .await
            .unwrap_err()
            .contains("http or https"));
        assert!(check_url("https://u:p@example.org/", &p).await.is_err());
        assert_eq!(
            check_url("https://hooks.example.org/x", &p).await.unwrap(),
            "https://hooks.example.org/x"
        );
        let loopback_ok =
            AddressPolicy::new(&["127.0.0.0/8".into(), "::1/128".into()], &[]).unwrap();
        assert!(check_url("http://localhost:9/cb", &loopback_ok)
            .await
            .is_ok());
    }
}
