//! Where a URL given by a tenant (a Slack or Discord webhook, a recipient's endpoint) may lead:
//! the rules against server-side request forgery that need no network, shared by the API (which
//! refuses such a URL when it is given) and the worker (which checks it again before each call and
//! resolves names through a guard of its own, `herald_worker::outbound`).
//!
//! [`check_url`] refuses other schemes than https (http too when private networks are allowed),
//! credentials in the URL, IP-literal hosts in a forbidden range and local or internal names;
//! [`forbidden_range`] names the range an address lies in, for the resolver's guard as well.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is not a public destination: the range it lies in, and, for an IPv4 address
/// embedded in an IPv6 one, the form that embeds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForbiddenRange {
    pub range: &'static str,
    pub embedded_in: Option<&'static str>,
}

impl fmt::Display for ForbiddenRange {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.embedded_in {
            None => formatter.write_str(self.range),
            Some(form) => write!(formatter, "{} embedded in {form}", self.range),
        }
    }
}

const fn range(range: &'static str) -> ForbiddenRange {
    ForbiddenRange {
        range,
        embedded_in: None,
    }
}

/// Why a URL is not called. Every refusal is a permanent failure of the delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundRefusal {
    #[error("the URL scheme `{scheme}` is not allowed: outbound calls use https")]
    UnsupportedScheme { scheme: String },
    #[error("plain http is not allowed for outbound calls: the URL must use https")]
    PlainHttp,
    #[error("the URL carries credentials (user:password@host), which are never sent from a URL")]
    Credentials,
    #[error("the URL has no host")]
    MissingHost,
    #[error("the URL's host {address} is not a public address: {range}")]
    ForbiddenAddress {
        address: IpAddr,
        range: ForbiddenRange,
    },
    #[error("the URL's host `{host}` is not a public name: {reason}")]
    ForbiddenHost { host: String, reason: &'static str },
}

/// Checks a tenant-given URL before a request to it; see the module documentation. With
/// `allow_private_networks`, http and any host are allowed, but other schemes and credentials
/// still are not.
pub fn check_url(url: &url::Url, allow_private_networks: bool) -> Result<(), OutboundRefusal> {
    match url.scheme() {
        "https" => {}
        "http" if allow_private_networks => {}
        "http" => return Err(OutboundRefusal::PlainHttp),
        other => {
            return Err(OutboundRefusal::UnsupportedScheme {
                scheme: other.to_owned(),
            })
        }
    }
    // reqwest would send them as Basic authorization; a webhook URL has no business carrying any,
    // and a URL is logged and stored in places a password must not be.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(OutboundRefusal::Credentials);
    }
    let Some(host) = url.host_str() else {
        return Err(OutboundRefusal::MissingHost);
    };
    if allow_private_networks {
        return Ok(());
    }
    // The url crate has already turned every spelling of an IPv4 address (decimal `2130706433`,
    // hex `0x7f.1`, octal, short `127.1`) into dotted form and bracketed IPv6 ones, so a host
    // that parses as an address here is exactly an IP literal, and a name never does.
    let unbracketed = host
        .strip_prefix('[')
        .and_then(|host| host.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(address) = unbracketed.parse::<IpAddr>() {
        return match forbidden_range(address) {
            Some(range) => Err(OutboundRefusal::ForbiddenAddress { address, range }),
            None => Ok(()),
        };
    }
    match forbidden_host_name_reason(host) {
        Some(reason) => Err(OutboundRefusal::ForbiddenHost {
            host: host.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Whether `address` is not a public unicast destination; see [`forbidden_range`].
pub fn is_forbidden_address(address: IpAddr) -> bool {
    forbidden_range(address).is_some()
}

/// The forbidden range `address` lies in, or `None` for a public unicast address. IPv4 addresses
/// embedded in IPv6 ones (IPv4-mapped, NAT64, 6to4, Teredo) are judged as the IPv4 address they
/// reach; every IPv6 address outside global unicast 2000::/3 is forbidden.
pub fn forbidden_range(address: IpAddr) -> Option<ForbiddenRange> {
    match address {
        IpAddr::V4(address) => forbidden_ipv4_range(address).map(range),
        IpAddr::V6(address) => forbidden_ipv6_range(address),
    }
}

/// Non-public IPv4 ranges (IANA special-purpose registry, RFC 6890 and successors), as prefix,
/// prefix length and name. Limited broadcast comes before 240.0.0.0/4 only to be named as such.
#[rustfmt::skip]
const FORBIDDEN_IPV4_RANGES: &[(Ipv4Addr, u32, &str)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8, "\"this network\" 0.0.0.0/8"),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private 10.0.0.0/8"),
    (Ipv4Addr::new(100, 64, 0, 0), 10, "shared address space (CGNAT) 100.64.0.0/10"),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback 127.0.0.0/8"),
    (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local 169.254.0.0/16 (cloud metadata)"),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private 172.16.0.0/12"),
    (Ipv4Addr::new(192, 0, 0, 0), 24, "IETF protocol assignments 192.0.0.0/24"),
    (Ipv4Addr::new(192, 0, 2, 0), 24, "documentation 192.0.2.0/24"),
    (Ipv4Addr::new(192, 88, 99, 0), 24, "6to4 relay anycast 192.88.99.0/24"),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private 192.168.0.0/16"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking 198.18.0.0/15"),
    (Ipv4Addr::new(198, 51, 100, 0), 24, "documentation 198.51.100.0/24"),
    (Ipv4Addr::new(203, 0, 113, 0), 24, "documentation 203.0.113.0/24"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast 224.0.0.0/4"),
    (Ipv4Addr::new(255, 255, 255, 255), 32, "limited broadcast 255.255.255.255"),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved 240.0.0.0/4"),
];

/// Non-global IPv6 ranges outside 2000::/3, named for the refusal's message; whatever else lies
/// outside 2000::/3 is refused as "not global unicast".
#[rustfmt::skip]
const NAMED_IPV6_RANGES_OUTSIDE_GLOBAL_UNICAST: &[(Ipv6Addr, u32, &str)] = &[
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48, "local-use NAT64 64:ff9b:1::/48"),
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64, "discard-only 100::/64"),
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, "unique local fc00::/7"),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local fe80::/10"),
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, "deprecated site-local fec0::/10"),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast ff00::/8"),
];

/// Non-global ranges inside global unicast 2000::/3.
#[rustfmt::skip]
const FORBIDDEN_IPV6_RANGES_INSIDE_GLOBAL_UNICAST: &[(Ipv6Addr, u32, &str)] = &[
    (Ipv6Addr::new(0x2001, 0x2, 0, 0, 0, 0, 0, 0), 48, "benchmarking 2001:2::/48"),
    (Ipv6Addr::new(0x2001, 0x10, 0, 0, 0, 0, 0, 0), 28, "deprecated ORCHID 2001:10::/28"),
    (Ipv6Addr::new(0x2001, 0x20, 0, 0, 0, 0, 0, 0), 28, "ORCHIDv2 2001:20::/28"),
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32, "documentation 2001:db8::/32"),
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20, "documentation 3fff::/20"),
];

const GLOBAL_UNICAST: (Ipv6Addr, u32) = (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);
const IPV4_COMPATIBLE: (Ipv6Addr, u32) = (Ipv6Addr::UNSPECIFIED, 96);
const NAT64_WELL_KNOWN: (Ipv6Addr, u32) = (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96);
const SIX_TO_FOUR: (Ipv6Addr, u32) = (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16);
const TEREDO: (Ipv6Addr, u32) = (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32);

fn ipv4_in(address: Ipv4Addr, prefix: Ipv4Addr, prefix_length: u32) -> bool {
    debug_assert!(prefix_length <= 32);
    let mask = u32::MAX.checked_shl(32 - prefix_length).unwrap_or(0);
    u32::from(address) & mask == u32::from(prefix) & mask
}

fn ipv6_in(address: Ipv6Addr, (prefix, prefix_length): (Ipv6Addr, u32)) -> bool {
    debug_assert!(prefix_length <= 128);
    let mask = u128::MAX.checked_shl(128 - prefix_length).unwrap_or(0);
    u128::from(address) & mask == u128::from(prefix) & mask
}

fn forbidden_ipv4_range(address: Ipv4Addr) -> Option<&'static str> {
    FORBIDDEN_IPV4_RANGES
        .iter()
        .find(|(prefix, length, _)| ipv4_in(address, *prefix, *length))
        .map(|(_, _, name)| *name)
}

/// An IPv4 address embedded in an IPv6 one is as forbidden as the IPv4 address itself.
fn embedded(address: Ipv4Addr, form: &'static str) -> Option<ForbiddenRange> {
    forbidden_ipv4_range(address).map(|range| ForbiddenRange {
        range,
        embedded_in: Some(form),
    })
}

fn forbidden_ipv6_range(address: Ipv6Addr) -> Option<ForbiddenRange> {
    let bits = u128::from(address);
    // ::ffff:a.b.c.d is how a dual-stack socket names an IPv4 peer: it reaches a.b.c.d.
    if let Some(mapped) = address.to_ipv4_mapped() {
        return embedded(mapped, "IPv4-mapped ::ffff:0:0/96");
    }
    if address.is_unspecified() {
        return Some(range("unspecified ::"));
    }
    if address.is_loopback() {
        return Some(range("loopback ::1"));
    }
    // Deprecated (RFC 4291 §2.5.5.1) and never a legitimate destination: refused whole, whatever
    // IPv4 address it embeds.
    if ipv6_in(address, IPV4_COMPATIBLE) {
        return Some(range("deprecated IPv4-compatible ::/96"));
    }
    // A NAT64 gateway translates 64:ff9b::a.b.c.d to a.b.c.d, private or not.
    if ipv6_in(address, NAT64_WELL_KNOWN) {
        return embedded(Ipv4Addr::from(bits as u32), "NAT64 64:ff9b::/96");
    }
    if !ipv6_in(address, GLOBAL_UNICAST) {
        let name = NAMED_IPV6_RANGES_OUTSIDE_GLOBAL_UNICAST
            .iter()
            .find(|(prefix, length, _)| ipv6_in(address, (*prefix, *length)))
            .map_or("not global unicast (outside 2000::/3)", |(_, _, name)| {
                *name
            });
        return Some(range(name));
    }
    if let Some((_, _, name)) = FORBIDDEN_IPV6_RANGES_INSIDE_GLOBAL_UNICAST
        .iter()
        .find(|(prefix, length, _)| ipv6_in(address, (*prefix, *length)))
    {
        return Some(range(name));
    }
    // 6to4: 2002:AABB:CCDD::/48 is the site behind the IPv4 address AA.BB.CC.DD.
    if ipv6_in(address, SIX_TO_FOUR) {
        return embedded(Ipv4Addr::from((bits >> 80) as u32), "6to4 2002::/16");
    }
    // Teredo: 2001:0:SERVER:flags:port:CLIENT, the client's IPv4 address with every bit inverted.
    if ipv6_in(address, TEREDO) {
        let server = Ipv4Addr::from((bits >> 64) as u32);
        let client = Ipv4Addr::from(!(bits as u32));
        return embedded(client, "Teredo 2001::/32 (client)")
            .or_else(|| embedded(server, "Teredo 2001::/32 (server)"));
    }
    None
}

/// Why a host name is not a public one, or `None`. Names that resolve to private addresses are
/// the resolver's business; these are refused by name so the refusal is clear and early.
fn forbidden_host_name_reason(host: &str) -> Option<&'static str> {
    // `localhost.` is `localhost`: a trailing dot only says the name is fully qualified.
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return Some("an empty name");
    }
    if name == "metadata.google.internal" || name == "metadata" || name == "instance-data" {
        return Some("a cloud metadata service");
    }
    if name == "localhost" || name.ends_with(".localhost") {
        return Some("a loopback name (RFC 6761)");
    }
    const PRIVATE_USE_SUFFIXES: [&str; 4] = [".internal", ".local", ".localdomain", ".home.arpa"];
    if PRIVATE_USE_SUFFIXES
        .iter()
        .any(|suffix| name.ends_with(suffix))
    {
        return Some("a private-use domain (.internal, .local, .localdomain or .home.arpa)");
    }
    // A single label is resolved through the local search domains: `postgres`, `redis`, `kafka`
    // name our own services there, never a tenant's endpoint.
    if !name.contains('.') {
        return Some("a single label, resolved through local search domains");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> url::Url {
        url::Url::parse(text).unwrap_or_else(|error| panic!("{text}: {error}"))
    }

    #[test]
    fn the_range_tables_have_no_host_bits_set() {
        for (prefix, length, name) in FORBIDDEN_IPV4_RANGES {
            assert!(ipv4_in(*prefix, *prefix, *length), "{name}");
            let mask = u32::MAX.checked_shl(32 - length).unwrap_or(0);
            assert_eq!(u32::from(*prefix) & !mask, 0, "{name}");
        }
        for (prefix, length, name) in NAMED_IPV6_RANGES_OUTSIDE_GLOBAL_UNICAST
            .iter()
            .chain(FORBIDDEN_IPV6_RANGES_INSIDE_GLOBAL_UNICAST)
        {
            let mask = u128::MAX.checked_shl(128 - length).unwrap_or(0);
            assert_eq!(u128::from(*prefix) & !mask, 0, "{name}");
        }
    }

    #[test]
    fn forbidden_addresses_are_refused() {
        let forbidden = [
            // IPv4.
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.100.100.200", // Alibaba Cloud metadata, in CGNAT space.
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.0.1",
            "169.254.169.254", // AWS, GCP and Azure metadata.
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.170", // NAT64 discovery.
            "192.0.0.192", // Oracle Cloud metadata.
            "192.0.2.1",
            "192.88.99.1",
            "192.168.0.1",
            "192.168.255.255",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            // IPv6.
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:7f00:1", // The same, spelled in hex.
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:0.0.0.0",
            "::127.0.0.1", // IPv4-compatible.
            "::8.8.8.8",   // IPv4-compatible, refused whole: deprecated.
            "::ffff:0:127.0.0.1",
            "::ffff:0:8.8.8.8",
            "64:ff9b::7f00:1", // NAT64 of 127.0.0.1.
            "64:ff9b::169.254.169.254",
            "64:ff9b::10.1.2.3",
            "64:ff9b:1::808:808", // Local-use NAT64.
            "100::1",
            "5f00::1",
            "fc00::1",
            "fd00:ec2::254", // AWS metadata over IPv6.
            "fdff:ffff::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff05::1:3",
            "2001:2::1",
            "2001:10::1",
            "2001:20::1",
            "2001:db8::1",
            "2001:db8:ffff::1",
            "3fff::1",
            "3fff:fff::1",
            "2002:7f00:1::1",   // 6to4 of 127.0.0.1.
            "2002:c0a8:101::1", // 6to4 of 192.168.1.1.
            "2002:a9fe:a9fe::",
            // Teredo, RFC 4380's example: client 192.0.2.45 (documentation).
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            // Teredo whose client is 127.0.0.1.
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            // Teredo whose server is 10.0.0.1 and client 8.8.8.8.
            "2001:0:a00:1:8000:63bf:f7f7:f7f7",
        ];
        for text in forbidden {
            let address: IpAddr = text.parse().unwrap_or_else(|_| panic!("{text}"));
            assert!(is_forbidden_address(address), "{text} should be forbidden");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        let public = [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "192.0.3.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "203.0.114.0",
            "223.255.255.255",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808", // NAT64 of 8.8.8.8.
            "2001:4860:4860::8888",
            "2606:4700:4700::1111",
            "2a00:1450:4001:81b::200e",
            "2001:3::1",
            "2001:db9::1",
            "2002:808:808::1", // 6to4 of 8.8.8.8.
            // Teredo: server 65.54.227.120, client 8.8.8.8.
            "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
            "3fff:1000::1",
            "3ffe::1",
        ];
        for text in public {
            let address: IpAddr = text.parse().unwrap_or_else(|_| panic!("{text}"));
            assert_eq!(forbidden_range(address), None, "{text} should be allowed");
        }
    }

    #[test]
    fn a_forbidden_range_names_the_embedding() {
        let range = forbidden_range("::ffff:127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(
            range.to_string(),
            "loopback 127.0.0.0/8 embedded in IPv4-mapped ::ffff:0:0/96"
        );
        let range = forbidden_range("169.254.169.254".parse().unwrap()).unwrap();
        assert!(range.to_string().contains("metadata"), "{range}");
    }

    #[test]
    fn check_url_allows_public_https_urls() {
        for text in [
            "https://hooks.slack.com/services/T000/B000/XXXX",
            "https://discord.com/api/webhooks/1/abc",
            "https://example.com:8443/hook?x=1",
            "https://8.8.8.8/hook",
            "https://[2606:4700:4700::1111]/hook",
            "https://EXAMPLE.com./hook",
        ] {
            assert_eq!(check_url(&url(text), false), Ok(()), "{text}");
        }
    }

    #[test]
    fn check_url_refuses_schemes_and_credentials() {
        assert_eq!(
            check_url(&url("http://example.com/"), false),
            Err(OutboundRefusal::PlainHttp)
        );
        for text in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://example.com/",
            "ws://example.com/",
            "data:text/plain,hi",
        ] {
            assert!(
                matches!(
                    check_url(&url(text), false),
                    Err(OutboundRefusal::UnsupportedScheme { .. })
                ),
                "{text}"
            );
            assert!(check_url(&url(text), true).is_err(), "{text} even allowed");
        }
        for text in [
            "https://user:secret@example.com/",
            "https://user@example.com/",
            "https://:secret@example.com/",
        ] {
            assert_eq!(
                check_url(&url(text), false),
                Err(OutboundRefusal::Credentials),
                "{text}"
            );
            assert_eq!(
                check_url(&url(text), true),
                Err(OutboundRefusal::Credentials),
                "{text} even allowed"
            );
        }
    }

    #[test]
    fn check_url_refuses_forbidden_ip_literals_however_spelled() {
        for (text, expected) in [
            ("https://127.0.0.1/", "127.0.0.1"),
            ("https://127.1/", "127.0.0.1"),
            ("https://2130706433/", "127.0.0.1"),
            ("https://0x7f.0.0.1/", "127.0.0.1"),
            ("https://0177.0.0.1/", "127.0.0.1"),
            ("https://0/", "0.0.0.0"),
            (
                "https://169.254.169.254/latest/meta-data/",
                "169.254.169.254",
            ),
            ("https://10.0.0.1:8443/", "10.0.0.1"),
            ("https://[::1]/", "::1"),
            ("https://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1"),
            ("https://[::ffff:a9fe:a9fe]/", "::ffff:169.254.169.254"),
            ("https://[fd00:ec2::254]/", "fd00:ec2::254"),
            ("https://[fe80::1]/", "fe80::1"),
            ("https://[64:ff9b::7f00:1]/", "64:ff9b::7f00:1"),
        ] {
            match check_url(&url(text), false) {
                Err(OutboundRefusal::ForbiddenAddress { address, .. }) => {
                    assert_eq!(address, expected.parse::<IpAddr>().unwrap(), "{text}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn check_url_refuses_local_and_internal_names() {
        for text in [
            "https://localhost/",
            "https://LOCALHOST./",
            "https://localhost:8443/",
            "https://api.localhost/",
            "https://metadata.google.internal/computeMetadata/v1/",
            "https://metadata/",
            "https://instance-data/latest/",
            "https://service.namespace.svc.internal/",
            "https://printer.local/",
            "https://box.localdomain/",
            "https://router.home.arpa/",
            "https://postgres:5432/",
            "https://intranet/",
            // Full-width letters: IDNA maps them to `localhost`.
            "https://\u{ff4c}\u{ff4f}\u{ff43}\u{ff41}\u{ff4c}\u{ff48}\u{ff4f}\u{ff53}\u{ff54}/",
        ] {
            assert!(
                matches!(
                    check_url(&url(text), false),
                    Err(OutboundRefusal::ForbiddenHost { .. })
                ),
                "{text}: {:?}",
                check_url(&url(text), false)
            );
        }
    }

    #[test]
    fn allowing_private_networks_allows_http_and_any_host() {
        for text in [
            "http://127.0.0.1:8080/hook",
            "http://localhost/",
            "https://[::1]:8443/",
            "http://postgres:5432/",
        ] {
            assert_eq!(check_url(&url(text), true), Ok(()), "{text}");
        }
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let refusal = check_url(&url("https://169.254.169.254/"), false).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "the URL's host 169.254.169.254 is not a public address: link-local 169.254.0.0/16 \
             (cloud metadata)"
        );
        let refusal = check_url(&url("https://localhost/"), false).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "the URL's host `localhost` is not a public name: a loopback name (RFC 6761)"
        );
    }
}
