//! The SSRF guard: which URLs and addresses the fetcher may contact.
//!
//! The check happens in three places because each sees something the others don't:
//! [`check_url`] sees the URL typed in (scheme, credentials, IP literals; hyper connects to an IP
//! literal without asking any resolver), the redirect policy runs the same check on every hop,
//! and [`GuardResolver`] sees the addresses a host name resolves to at the moment of
//! connecting, so a DNS answer that changes after [`check_url`] (rebinding) cannot slip a private
//! address in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use super::FetchError;

/// True for every address a fetch must not reach unless its host is explicitly allowed:
/// anything that is not ordinary public unicast. IPv6 is judged by allow-list (only global
/// unicast 2000::/3 minus its special blocks passes) because the special ranges keep growing;
/// IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by that
/// address, since that is where the packets end up.
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0 // "this network", incl. 0.0.0.0 which Linux treats as localhost
        || a == 10
        || (a == 100 && (64..128).contains(&b)) // CGNAT shared space
        || a == 127
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224 // multicast, reserved, broadcast
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    // ::ffff:a.b.c.d (mapped): the kernel connects to the IPv4 address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_forbidden_v4(v4);
    }
    // 64:ff9b::/96 (well-known NAT64 prefix): the gateway forwards to the embedded address.
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_forbidden_v4(embedded_v4(seg[6], seg[7]));
    }
    // 2002::/16 (6to4): the embedded address is the tunnel endpoint.
    if seg[0] == 0x2002 {
        return is_forbidden_v4(embedded_v4(seg[1], seg[2]));
    }
    // Only global unicast can be a public web server; this also rejects ::, ::1, the deprecated
    // IPv4-compatible ::/96, 100::/64 discard, fc00::/7, fe80::/10, fec0::/10 and ff00::/8.
    if seg[0] & 0xe000 != 0x2000 {
        return true;
    }
    // 2001::/23 holds the IETF protocol assignments (Teredo, ORCHID, benchmarking), 2001:db8::/32
    // and 3fff::/20 are documentation.
    (seg[0] == 0x2001 && (seg[1] < 0x200 || seg[1] == 0x0db8)) || (seg[0] & 0xfff0) == 0x3ff0
}

fn embedded_v4(hi: u16, lo: u16) -> Ipv4Addr {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

/// Operator-allowed hosts, normalised once so that "Intranet.Example.", "intranet.example" and
/// "[::1]" / "::1" compare equal to what the URL parser and the resolver hand us.
#[derive(Debug, Default)]
pub(crate) struct AllowList {
    names: Vec<String>,
    ips: Vec<IpAddr>,
}

impl AllowList {
    pub(crate) fn new(hosts: &[String]) -> Self {
        let mut list = AllowList::default();
        for host in hosts {
            let host = host.trim();
            let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
            match bare.parse::<IpAddr>() {
                Ok(ip) => list.ips.push(ip),
                Err(_) => {
                    let name = normalise_name(bare);
                    if !name.is_empty() {
                        list.names.push(name);
                    }
                }
            }
        }
        list
    }

    fn allows_name(&self, name: &str) -> bool {
        let name = normalise_name(name);
        self.names.contains(&name)
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        self.ips.contains(&ip)
    }
}

fn normalise_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The static part of the guard, usable without a [`Fetcher`](super::Fetcher): it is run when a
/// source is created, so a staff member gets an immediate error for `ftp://…` or
/// `http://169.254.169.254/` instead of a failing poll hours later. Host names are only
/// resolved at fetch time (see [`GuardResolver`]), except `localhost` and `*.localhost`, which
/// always mean loopback.
pub fn check_url(url: &str, allow_hosts: &[String]) -> Result<Url, FetchError> {
    check_parsed(parse_url(url)?, &AllowList::new(allow_hosts))
}

pub(crate) fn check_with(url: &str, allow: &AllowList) -> Result<Url, FetchError> {
    check_parsed(parse_url(url)?, allow)
}

fn parse_url(url: &str) -> Result<Url, FetchError> {
    Url::parse(url.trim()).map_err(|e| FetchError::blocked(format!("invalid URL: {e}")))
}

fn check_parsed(url: Url, allow: &AllowList) -> Result<Url, FetchError> {
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(FetchError::blocked(format!(
                "scheme \"{other}\" is not allowed (only http and https)"
            )));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FetchError::blocked("user name or password in the URL is not allowed"));
    }
    match url.host() {
        None => return Err(FetchError::blocked("URL has no host")),
        Some(Host::Domain(name)) => {
            if name.is_empty() {
                return Err(FetchError::blocked("URL has an empty host"));
            }
            let normalised = normalise_name(name);
            let is_localhost = normalised == "localhost" || normalised.ends_with(".localhost");
            if is_localhost && !allow.allows_name(name) {
                return Err(FetchError::blocked(format!("host {name} is a loopback name")));
            }
        }
        Some(Host::Ipv4(ip)) => check_ip_literal(IpAddr::V4(ip), allow)?,
        Some(Host::Ipv6(ip)) => check_ip_literal(IpAddr::V6(ip), allow)?,
    }
    Ok(url)
}

fn check_ip_literal(ip: IpAddr, allow: &AllowList) -> Result<(), FetchError> {
    if is_forbidden_ip(ip) && !allow.allows_ip(ip) {
        return Err(FetchError::blocked(format!("address {ip} is private or reserved")));
    }
    Ok(())
}

/// The decision for one redirect hop, separate from reqwest's `Attempt` so it can be tested
/// without sending anything to a forbidden address. `previous` counts the URLs already
/// requested in this chain, the original one included.
pub(crate) fn check_redirect(
    next: &Url,
    previous: usize,
    max_redirects: usize,
    allow: &AllowList,
) -> Result<(), FetchError> {
    if previous > max_redirects {
        return Err(FetchError::TooManyRedirects { max: max_redirects });
    }
    check_parsed(next.clone(), allow).map(|_| ())
}

pub(crate) fn redirect_policy(allow: Arc<AllowList>, max_redirects: usize) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        match check_redirect(attempt.url(), attempt.previous().len(), max_redirects, &allow) {
            Ok(()) => attempt.follow(),
            Err(e) => {
                tracing::debug!(target_url = %attempt.url(), error = %e, "redirect refused");
                attempt.error(e)
            }
        }
    })
}

/// Resolves with the system resolver and drops forbidden addresses, so the connector only ever
/// sees the addresses we checked. Allowed host names pass through unfiltered.
pub(crate) struct GuardResolver {
    allow: Arc<AllowList>,
}

impl GuardResolver {
    pub(crate) fn new(allow: Arc<AllowList>) -> Self {
        GuardResolver { allow }
    }
}

impl Resolve for GuardResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = Arc::clone(&self.allow);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let addrs = filter_addrs(&host, addrs, &allow)?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Keeps the public addresses of a resolved name. Mixed answers (public and private) keep the
/// public part rather than failing, since the connector then cannot reach the private one anyway.
fn filter_addrs(host: &str, addrs: Vec<SocketAddr>, allow: &AllowList) -> Result<Vec<SocketAddr>, FetchError> {
    if addrs.is_empty() {
        return Err(FetchError::Network(format!("{host} has no addresses")));
    }
    if allow.allows_name(host) {
        return Ok(addrs);
    }
    let first = addrs[0].ip();
    let public: Vec<SocketAddr> = addrs.into_iter().filter(|a| !is_forbidden_ip(a.ip())).collect();
    if public.is_empty() {
        return Err(FetchError::blocked(format!(
            "{host} resolves to private or reserved address {first}"
        )));
    }
    Ok(public)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn forbidden_ip_table() {
        let cases: &[(&str, bool)] = &[
            ("0.0.0.0", true),
            ("0.1.2.3", true),
            ("10.0.0.1", true),
            ("100.64.0.1", true),
            ("100.127.255.254", true),
            ("100.63.255.255", false),
            ("100.128.0.1", false),
            ("127.0.0.1", true),
            ("127.255.0.9", true),
            ("169.254.169.254", true),
            ("172.16.0.1", true),
            ("172.31.255.255", true),
            ("172.15.0.1", false),
            ("172.32.0.1", false),
            ("192.0.0.8", true),
            ("192.0.2.1", true),
            ("192.88.99.1", true),
            ("192.168.1.1", true),
            ("198.18.0.1", true),
            ("198.19.255.1", true),
            ("198.51.100.7", true),
            ("203.0.113.9", true),
            ("224.0.0.1", true),
            ("239.255.255.250", true),
            ("240.0.0.1", true),
            ("255.255.255.255", true),
            ("8.8.8.8", false),
            ("1.1.1.1", false),
            ("114.114.114.114", false),
            ("202.108.22.5", false),
            ("::", true),
            ("::1", true),
            ("::ffff:10.0.0.1", true),
            ("::ffff:127.0.0.1", true),
            ("::ffff:169.254.169.254", true),
            ("::ffff:8.8.8.8", false),
            ("::10.0.0.1", true),
            ("64:ff9b::10.0.0.1", true),
            ("64:ff9b::8.8.8.8", false),
            ("2002:0a00:0001::1", true),
            ("2002:0808:0808::1", false),
            ("100::1", true),
            ("fc00::1", true),
            ("fd12:3456::1", true),
            ("fe80::1", true),
            ("fec0::1", true),
            ("ff02::1", true),
            ("2001::1", true),
            ("2001:db8::1", true),
            ("3fff::1", true),
            ("2001:4860:4860::8888", false),
            ("2400:3200::1", false),
            ("2606:4700:4700::1111", false),
        ];
        for (ip, forbidden) in cases {
            let addr: IpAddr = ip.parse().unwrap();
            assert_eq!(is_forbidden_ip(addr), *forbidden, "{ip}");
        }
    }

    fn blocked(r: Result<Url, FetchError>) -> String {
        match r {
            Err(FetchError::Blocked { reason }) => reason,
            other => panic!("expected Blocked, got {other:?}"),
        }
    }

    #[test]
    fn check_url_rejects_bad_urls() {
        let none: &[String] = &[];
        assert!(blocked(check_url("ftp://example.com/feed", none)).contains("scheme"));
        assert!(blocked(check_url("file:///etc/passwd", none)).contains("scheme"));
        assert!(blocked(check_url("javascript:alert(1)", none)).contains("scheme"));
        assert!(blocked(check_url("http://user:pw@example.com/", none)).contains("password"));
        assert!(blocked(check_url("http://user@example.com/", none)).contains("user name"));
        assert!(blocked(check_url("http://", none)).contains("invalid URL"));
        assert!(blocked(check_url("http:///", none)).contains("invalid URL"));
        assert!(blocked(check_url("not a url", none)).contains("invalid URL"));
        assert!(blocked(check_url("http://169.254.169.254/latest/meta-data", none)).contains("169.254.169.254"));
        assert!(blocked(check_url("http://10.0.0.1/", none)).contains("private"));
        assert!(blocked(check_url("http://[::1]:8080/", none)).contains("::1"));
        assert!(blocked(check_url("http://[::ffff:10.0.0.1]/", none)).contains("private"));
        // Alternative IPv4 spellings are normalised by the URL parser, so they are caught too.
        assert!(blocked(check_url("http://2130706433/", none)).contains("127.0.0.1"));
        assert!(blocked(check_url("http://0x7f.1/", none)).contains("127.0.0.1"));
        assert!(blocked(check_url("http://localhost:8080/", none)).contains("loopback"));
        assert!(blocked(check_url("http://LOCALHOST./", none)).contains("loopback"));
        assert!(blocked(check_url("http://x.localhost/", none)).contains("loopback"));
    }

    #[test]
    fn check_url_accepts_public_and_allowed() {
        let none: &[String] = &[];
        assert!(check_url("https://news.example.com/rss?x=1", none).is_ok());
        assert!(check_url("http://8.8.8.8:8080/feed", none).is_ok());
        assert!(check_url("https://[2606:4700:4700::1111]/", none).is_ok());
        let allow = vec!["127.0.0.1".to_owned(), "[::1]".to_owned(), "Localhost.".to_owned()];
        assert!(check_url("http://127.0.0.1:9999/", &allow).is_ok());
        assert!(check_url("http://[::1]:9999/", &allow).is_ok());
        assert!(check_url("http://localhost:9999/", &allow).is_ok());
        // Allowing one loopback address does not allow the others.
        assert!(check_url("http://127.0.0.2/", &allow).is_err());
    }

    #[test]
    fn redirect_decisions() {
        let allow = AllowList::new(&["127.0.0.1".to_owned()]);
        let url = |s: &str| Url::parse(s).unwrap();
        assert_eq!(check_redirect(&url("http://127.0.0.1:1/next"), 1, 5, &allow), Ok(()));
        assert_eq!(check_redirect(&url("https://example.com/"), 5, 5, &allow), Ok(()));
        assert_eq!(
            check_redirect(&url("https://example.com/"), 6, 5, &allow),
            Err(FetchError::TooManyRedirects { max: 5 })
        );
        assert_eq!(
            check_redirect(&url("https://example.com/"), 1, 0, &allow),
            Err(FetchError::TooManyRedirects { max: 0 })
        );
        for target in [
            "http://169.254.169.254/latest",
            "http://10.0.0.1/",
            "http://[fd00::1]/",
            "ftp://example.com/",
        ] {
            assert!(
                matches!(
                    check_redirect(&url(target), 1, 5, &allow),
                    Err(FetchError::Blocked { .. })
                ),
                "{target}"
            );
        }
    }

    #[test]
    fn resolved_addresses_filtered() {
        let allow = AllowList::new(&["intranet-news.hospital.local".to_owned()]);
        let addr = |s: &str| SocketAddr::new(s.parse().unwrap(), 0);
        let private = vec![addr("10.1.2.3")];
        assert!(matches!(
            filter_addrs("evil.example", private.clone(), &allow),
            Err(FetchError::Blocked { .. })
        ));
        assert_eq!(
            filter_addrs("Intranet-News.Hospital.Local.", private.clone(), &allow),
            Ok(private)
        );
        let mixed = vec![addr("10.1.2.3"), addr("93.184.216.34"), addr("::1")];
        assert_eq!(
            filter_addrs("mixed.example", mixed, &allow),
            Ok(vec![addr("93.184.216.34")])
        );
        assert!(matches!(
            filter_addrs("empty.example", vec![], &allow),
            Err(FetchError::Network(_))
        ));
    }

    #[tokio::test]
    async fn resolver_blocks_loopback_names_unless_allowed() {
        let resolver = GuardResolver::new(Arc::new(AllowList::new(&["127.0.0.1".to_owned()])));
        let err = match resolver.resolve(Name::from_str("localhost").unwrap()).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e,
        };
        assert!(
            matches!(err.downcast_ref::<FetchError>(), Some(FetchError::Blocked { .. })),
            "{err}"
        );

        let resolver = GuardResolver::new(Arc::new(AllowList::new(&["localhost".to_owned()])));
        let addrs: Vec<_> = resolver
            .resolve(Name::from_str("localhost").unwrap())
            .await
            .unwrap()
            .collect();
        assert!(addrs.iter().any(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
