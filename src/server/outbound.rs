//! Requests to URLs a user supplied (a self-hosted Llama base URL, Validate,
//! budget webhooks) go through one guarded HTTP client: it resolves the name
//! itself and connects only to public addresses (so a name that resolves to
//! the server's own network, however often it changes, is refused at connect
//! time), follows no redirects, and refuses IP literals outside the public
//! range before sending. Private servers the operator means to reach are
//! named in `COVER_ALLOWED_PRIVATE_HOSTS` or on the admin page; the
//! operator's own base URLs from the environment do not pass through here.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// One entry of an allow-list: a host name, an address, or a network.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    Host(String),
    Network(IpAddr, u8),
}

impl std::fmt::Display for Allowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Allowed::Host(name) => f.write_str(name),
            Allowed::Network(ip, bits) if *bits == full_prefix(*ip) => write!(f, "{ip}"),
            Allowed::Network(ip, bits) => write!(f, "{ip}/{bits}"),
        }
    }
}

/// Non-public destinations someone allowed: host names, addresses and
/// networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    allowed: Vec<Allowed>,
}

impl AllowList {
    /// Parses a list separated by commas or line breaks (as
    /// `COVER_ALLOWED_PRIVATE_HOSTS` and the admin page write it): host
    /// names (`gpu.internal`), addresses (`10.0.0.7`) and networks
    /// (`10.0.0.0/8`, `fd00::/8`). Answers the entry it cannot read.
    pub fn parse(list: &str) -> Result<AllowList, String> {
        let mut allowed = Vec::new();
        let entries = list
            .split([',', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty());
        for entry in entries {
            let (address, bits) = match entry.split_once('/') {
                Some((address, bits)) => (address, Some(bits)),
                None => (entry, None),
            };
            let rule = match (address.parse::<IpAddr>(), bits) {
                (Ok(ip), None) => Allowed::Network(ip, full_prefix(ip)),
                (Ok(ip), Some(bits)) => match bits.parse::<u8>() {
                    Ok(bits) if bits <= full_prefix(ip) => Allowed::Network(ip, bits),
                    _ => return Err(format!("`{entry}`: the prefix length is not valid")),
                },
                (Err(_), None) if is_host_name(entry) => Allowed::Host(entry.to_ascii_lowercase()),
                _ => {
                    return Err(format!(
                        "`{entry}` is not a host name, an address or a network"
                    ))
                }
            };
            if !allowed.contains(&rule) {
                allowed.push(rule);
            }
        }
        Ok(AllowList { allowed })
    }

    /// The entries, as they are written.
    pub fn entries(&self) -> Vec<String> {
        self.allowed.iter().map(Allowed::to_string).collect()
    }

    /// Whether the list names `host` or holds `ip`.
    fn holds(&self, host: &str, ip: IpAddr) -> bool {
        self.allowed.iter().any(|rule| match rule {
            Allowed::Host(name) => name.eq_ignore_ascii_case(host.trim_end_matches('.')),
            Allowed::Network(network, bits) => in_network(ip, *network, *bits),
        })
    }
}

/// Which destinations a user-supplied URL may reach: public addresses, and
/// the non-public ones the operator (`COVER_ALLOWED_PRIVATE_HOSTS`, fixed at
/// start) or an admin (the admin page, changed at run time) allowed.
#[derive(Debug, Default)]
pub struct AddressPolicy {
    operator: AllowList,
    admin: RwLock<AllowList>,
}

impl AddressPolicy {
    /// A policy with the operator's list and, until an admin sets one, an
    /// empty admin list.
    pub fn new(operator: AllowList) -> AddressPolicy {
        AddressPolicy {
            operator,
            admin: RwLock::default(),
        }
    }

    /// The operator's list.
    pub fn operator_list(&self) -> &AllowList {
        &self.operator
    }

    /// The admin's list as it stands.
    pub fn admin_list(&self) -> AllowList {
        self.admin.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the admin's list (requests already connected are not affected).
    pub fn set_admin_list(&self, list: AllowList) {
        *self.admin.write().unwrap_or_else(|e| e.into_inner()) = list;
    }

    /// Whether a connection to `ip` (reached by the name `host`) may be made.
    pub fn permits(&self, host: &str, ip: IpAddr) -> bool {
        is_public(ip)
            || self.operator.holds(host, ip)
            || self
                .admin
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .holds(host, ip)
    }

    /// Checks a URL before it is requested: http(s) with a host, and an IP
    /// literal only when permitted (names are checked when they resolve).
    pub fn check_url(&self, url: &str) -> Result<(), OutboundRefusal> {
        let parsed = reqwest::Url::parse(url).map_err(|_| OutboundRefusal::NotAUrl)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(OutboundRefusal::NotAUrl);
        }
        let host = parsed.host_str().ok_or(OutboundRefusal::NotAUrl)?;
        let Ok(literal) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        else {
            return Ok(());
        };
        if self.permits(&literal.to_string(), literal) {
            Ok(())
        } else {
            Err(OutboundRefusal::PrivateAddress)
        }
    }
}

/// Why a guarded request was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OutboundRefusal {
    /// Not an http(s) URL with a host.
    #[error("the URL must be http:// or https:// with a host")]
    NotAUrl,
    /// The destination is the server's own or a private network.
    #[error(
        "the address is on a private, loopback or link-local network; an administrator can allow it on the admin page"
    )]
    PrivateAddress,
}

fn full_prefix(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn is_host_name(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn in_network(ip: IpAddr, network: IpAddr, bits: u8) -> bool {
    let (ip, network, width) = match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) => (
            u128::from(u32::from(ip)),
            u128::from(u32::from(network)),
            32,
        ),
        (IpAddr::V6(ip), IpAddr::V6(network)) => (u128::from(ip), u128::from(network), 128),
        _ => return false,
    };
    let shift = width - u32::from(bits);
    shift >= width || (ip >> shift) == (network >> shift)
}

/// Whether `ip` is on the public internet: not loopback, private, link-local
/// (the cloud metadata address among them), CGNAT, unique-local, multicast,
/// unspecified, broadcast or reserved, nor an IPv6 form of one of those.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(ip),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    let reserved = [
        (v4(0, 0, 0, 0), 8),
        (v4(10, 0, 0, 0), 8),
        (v4(100, 64, 0, 0), 10),
        (v4(127, 0, 0, 0), 8),
        (v4(169, 254, 0, 0), 16),
        (v4(172, 16, 0, 0), 12),
        (v4(192, 0, 0, 0), 24),
        (v4(192, 0, 2, 0), 24),
        (v4(192, 168, 0, 0), 16),
        (v4(198, 18, 0, 0), 15),
        (v4(198, 51, 100, 0), 24),
        (v4(203, 0, 113, 0), 24),
        (v4(224, 0, 0, 0), 4),
        (v4(240, 0, 0, 0), 4),
    ];
    !reserved
        .iter()
        .any(|(network, bits)| in_network(IpAddr::V4(ip), *network, *bits))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let v6 = |first: u16| IpAddr::V6(Ipv6Addr::new(first, 0, 0, 0, 0, 0, 0, 0));
    if ip.is_unspecified() || ip.is_loopback() {
        return false;
    }
    let reserved = [
        (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 96), // IPv4-compatible (::a.b.c.d), deprecated
        (v6(0x0064), 16), // 64:ff9b::/96 NAT64 and friends, to an IPv4 inside
        (v6(0x0100), 64), // discard
        (v6(0x2001), 23), // protocol assignments (Teredo, ORCHID, …)
        (
            IpAddr::V6(Ipv6Addr::new(0x2001, 0x0db8, 0, 0, 0, 0, 0, 0)),
            32,
        ), // documentation
        (v6(0xfc00), 7),  // unique-local (cloud metadata fd00:ec2::254 among them)
        (v6(0xfe80), 10), // link-local
        (v6(0xff00), 8),  // multicast
    ];
    !reserved
        .iter()
        .any(|(network, bits)| in_network(IpAddr::V6(ip), *network, *bits))
}

/// Resolves names itself and answers only the addresses the policy permits,
/// so the address connected to is always the one checked.
struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|address| policy.permits(&host, address.ip()))
                .collect();
            if permitted.is_empty() {
                return Err(Box::new(OutboundRefusal::PrivateAddress) as Box<_>);
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

/// The guarded client builder: the policy's resolver, no redirects.
pub fn guarded_client_builder(
    policy: Arc<AddressPolicy>,
    connect: Duration,
) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(connect)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(GuardedResolver { policy }))
        .user_agent(concat!("cover/", env!("CARGO_PKG_VERSION")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn only_public_addresses_pass_by_default() {
        let policy = AddressPolicy::default();
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "fc00::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "ff02::1",
        ] {
            assert!(
                !policy.permits("h", ip(refused)),
                "{refused} must be refused"
            );
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(policy.permits("h", ip(public)), "{public} is public");
        }
    }

    #[test]
    fn the_allow_list_lets_named_private_hosts_and_networks_through() {
        let operator = AllowList::parse("gpu.internal, 10.0.0.0/8").expect("valid");
        let policy = AddressPolicy::new(operator);
        assert!(policy.permits("GPU.internal.", ip("172.20.0.5")));
        assert!(policy.permits("other", ip("10.200.0.1")));
        assert!(!policy.permits("other", ip("192.168.1.7")));
        // The admin's list adds to the operator's, and can change.
        let admin = AllowList::parse("192.168.1.7\n fd00::/8,192.168.1.7").expect("valid");
        assert_eq!(admin.entries(), ["192.168.1.7", "fd00::/8"]);
        policy.set_admin_list(admin);
        assert!(policy.permits("other", ip("192.168.1.7")));
        assert!(policy.permits("other", ip("fd00::5")));
        assert!(!policy.permits("other", ip("192.168.1.8")));
        assert!(!policy.permits("other", ip("127.0.0.1")));
        policy.set_admin_list(AllowList::default());
        assert!(!policy.permits("other", ip("192.168.1.7")));
        assert!(
            policy.permits("other", ip("10.200.0.1")),
            "the operator's list stays"
        );
        assert!(AllowList::parse("10.0.0.0/33").is_err());
        assert!(AllowList::parse("not a host").is_err());
    }

    #[test]
    fn ip_literals_are_checked_before_any_request() {
        let policy = AddressPolicy::default();
        assert_eq!(
            policy.check_url("http://169.254.169.254/latest/meta-data/"),
            Err(OutboundRefusal::PrivateAddress)
        );
        assert_eq!(
            policy.check_url("http://[::1]:8080/"),
            Err(OutboundRefusal::PrivateAddress)
        );
        assert_eq!(
            policy.check_url("file:///etc/passwd"),
            Err(OutboundRefusal::NotAUrl)
        );
        assert_eq!(policy.check_url("https://api.example.com/hook"), Ok(()));
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_at_connect_time() {
        let resolver = GuardedResolver {
            policy: Arc::new(AddressPolicy::default()),
        };
        let name: Name = "localhost".parse().expect("a name");
        let refused = resolver.resolve(name).await.err().expect("refused");
        assert!(refused.to_string().contains("private"), "{refused}");
    }
}
