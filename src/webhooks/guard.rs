//! The SSRF guard: webhook URLs may not reach loopback, private,
//! link-local or metadata addresses, checked when a URL is given, after
//! every DNS resolution and on every redirect.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::{Attempt, Policy};
use reqwest::{Client, Url};

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;

/// How long a URL's host may take to resolve when it is given.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether a webhook may not be sent to `ip`.
pub fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => forbidden_v4(v4),
            None => forbidden_v6(v6),
        },
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        // 169.254.0.0/16, with the cloud metadata service at 169.254.169.254.
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        // 0.0.0.0/8, "this network".
        || a == 0
        // 100.64.0.0/10, carrier-grade NAT.
        || (a == 100 && (64..128).contains(&b))
        // 192.0.0.0/24, protocol assignments (includes 192.0.0.192, Oracle
        // Cloud's metadata service).
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        // 198.18.0.0/15, benchmarking networks.
        || (a == 198 && (b == 18 || b == 19))
        // 240.0.0.0/4, reserved.
        || a >= 240
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // fc00::/7, unique local (includes AWS's metadata fd00:ec2::254).
        || (first & 0xfe00) == 0xfc00
        // fe80::/10, link-local.
        || (first & 0xffc0) == 0xfe80
        // 64:ff9b::/96 and ::/96 embed IPv4 addresses.
        || ip.to_ipv4().is_some_and(forbidden_v4)
}

/// Why a webhook URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not an absolute http or https URL.
    #[error("must be an absolute http:// or https:// URL")]
    NotHttp,
    /// It names or resolves to an address webhooks may not reach.
    #[error(
        "resolves to a loopback, private, link-local or metadata address, which webhooks may \
         not reach (set WEBHOOK_ALLOW_PRIVATE=true to allow it)"
    )]
    Private,
}

impl Refused {
    /// The request rule a refused URL breaks.
    pub fn problem(self) -> crate::model::Problem {
        match self {
            Refused::NotHttp => crate::model::Problem::Url(crate::model::limits::URL_CHARS),
            Refused::Private => crate::model::Problem::PrivateAddress,
        }
    }
}

/// Checks a URL as it is given: its form, and unless `allow_private`, the
/// addresses its host names now. A host that does not resolve yet is
/// accepted; every delivery resolves it again through the guard.
pub async fn check_url(url: &str, allow_private: bool) -> Result<Url, Refused> {
    // As sent, and as an RFC 3986 URI: a URL parser would quietly drop
    // surrounding spaces and turn other scripts into `xn--` hosts.
    if url.chars().any(|c| !c.is_ascii_graphic()) {
        return Err(Refused::NotHttp);
    }
    let parsed = Url::parse(url).map_err(|_| Refused::NotHttp)?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(Refused::NotHttp);
    }
    if allow_private {
        return Ok(parsed);
    }
    if literal_forbidden(&parsed) {
        return Err(Refused::Private);
    }
    if let Some(url::Host::Domain(host)) = parsed.host() {
        let port = parsed.port_or_known_default().unwrap_or(80);
        let lookup = tokio::net::lookup_host((host, port));
        // A name that does not resolve now is checked at every delivery.
        if let Ok(Ok(addrs)) = tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.iter().any(|a| forbidden(a.ip())) {
                return Err(Refused::Private);
            }
        }
    }
    Ok(parsed)
}

/// Whether a URL names a forbidden IP address literally (a host name is
/// checked when it resolves).
fn literal_forbidden(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => forbidden(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => forbidden(IpAddr::V6(ip)),
        _ => false,
    }
}

/// Resolves host names and drops every forbidden address; a name with
/// nothing left fails to resolve.
struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| !forbidden(addr.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} {}", Refused::Private).into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The HTTP client deliveries use. Unless `allow_private`, every name it
/// resolves and every redirect it follows goes through the guard. It never
/// uses a proxy from the environment, which would resolve names itself.
pub fn client(allow_private: bool, timeout: Duration) -> Client {
    let mut builder = Client::builder()
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("Reelay-Webhooks/", env!("CARGO_PKG_VERSION")));
    if allow_private {
        builder = builder.redirect(Policy::limited(MAX_REDIRECTS));
    } else {
        builder = builder
            .dns_resolver(Arc::new(GuardedResolver))
            .redirect(Policy::custom(redirect));
    }
    builder.build().expect("a TLS backend")
}

/// The redirect rule: at most [`MAX_REDIRECTS`], http(s) only, and never
/// to a forbidden address literal.
fn redirect(attempt: Attempt) -> reqwest::redirect::Action {
    if attempt.previous().len() >= MAX_REDIRECTS {
        return attempt.error("too many redirects");
    }
    let url = attempt.url();
    if !matches!(url.scheme(), "http" | "https") {
        return attempt.error(Refused::NotHttp.to_string());
    }
    if literal_forbidden(url) {
        return attempt.error(format!("redirect {}", Refused::Private));
    }
    attempt.follow()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_metadata_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "192.0.0.192",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(forbidden(ip.parse().unwrap()), "{ip} should be forbidden");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "172.32.0.1"] {
            assert!(!forbidden(ip.parse().unwrap()), "{ip} should be allowed");
        }
    }

    #[tokio::test]
    async fn urls_are_checked_as_given() {
        assert_eq!(
            check_url("ftp://example.com/", false).await,
            Err(Refused::NotHttp)
        );
        assert_eq!(check_url("not a url", false).await, Err(Refused::NotHttp));
        assert_eq!(
            check_url("https://\u{cf}/", true).await,
            Err(Refused::NotHttp)
        );
        assert_eq!(
            check_url(" https://example.com/", true).await,
            Err(Refused::NotHttp)
        );
        for url in [
            "http://127.0.0.1:9/hook",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://localhost:8080/",
            "http://0x7f000001/",
        ] {
            assert_eq!(check_url(url, false).await, Err(Refused::Private), "{url}");
            assert!(check_url(url, true).await.is_ok(), "{url} when allowed");
        }
    }

    #[tokio::test]
    async fn deliveries_do_not_reach_private_addresses_through_names() {
        // The guarded client refuses a name that resolves to loopback even
        // when something listens there.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let err = client(false, Duration::from_secs(2))
            .get(format!("http://localhost:{port}/"))
            .send()
            .await
            .unwrap_err();
        assert!(format!("{err:?}").contains("private"), "{err:?}");
    }
}
