//! Which client a request comes from, for per-client bounds (the unknown-key throttle): the peer
//! address, or, when the peer is one of the configured proxies (`server.trusted_proxies`), the
//! address that proxy saw (`X-Forwarded-For`, read from the right, skipping trusted hops). A
//! client that is not behind a trusted proxy cannot choose its identity by sending the header.

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
}

impl TrustedProxies {
    /// Parses addresses (`10.0.0.7`) and networks (`10.0.0.0/8`); the error names the entry.
    pub fn parse(entries: &[String]) -> Result<TrustedProxies, String> {
        let networks = entries
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("`{entry}` is neither an IP address nor a network"))
            })
            .collect::<Result<_, _>>()?;
        Ok(TrustedProxies { networks })
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.networks
            .iter()
            .any(|network| network.contains(&address))
    }

    /// The client of `request`: see the module documentation.
    pub fn client_of(&self, request: &HttpRequest) -> Option<IpAddr> {
        let peer = request.peer_addr()?.ip();
        if !self.trusts(peer) {
            return Some(peer);
        }
        let forwarded: Vec<IpAddr> = request
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
            .collect();
        // Rightmost first: each trusted proxy appended the address it saw; the first untrusted
        // one from the right is the client (anything left of it, the client may have written).
        let client = forwarded
            .iter()
            .rev()
            .find(|hop| !self.trusts(**hop))
            .or(forwarded.first())
            .copied();
        Some(client.unwrap_or(peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn proxies(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn request(peer: &str, forwarded: Option<&str>) -> HttpRequest {
        let mut request = TestRequest::default().peer_addr(format!("{peer}:4000").parse().unwrap());
        if let Some(forwarded) = forwarded {
            request = request.insert_header(("x-forwarded-for", forwarded));
        }
        request.to_http_request()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let client = trusted.client_of(&request("203.0.113.9", Some("198.51.100.1")));
        assert_eq!(client, Some("203.0.113.9".parse().unwrap()));
        let nobody_trusted = proxies(&[]);
        let client = nobody_trusted.client_of(&request("127.0.0.1", Some("198.51.100.1")));
        assert_eq!(client, Some("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "192.0.2.1"]);
        // The client wrote a fake first hop; the ingress appended what it saw, then an inner proxy.
        let client = trusted.client_of(&request(
            "10.1.2.3",
            Some("1.2.3.4, 198.51.100.7, 192.0.2.1"),
        ));
        assert_eq!(client, Some("198.51.100.7".parse().unwrap()));
        // Only trusted hops: the leftmost.
        let client = trusted.client_of(&request("10.1.2.3", Some("10.9.9.9")));
        assert_eq!(client, Some("10.9.9.9".parse().unwrap()));
        // No header: the proxy itself.
        let client = trusted.client_of(&request("10.1.2.3", None));
        assert_eq!(client, Some("10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn entries_that_are_not_addresses_are_named() {
        let error = TrustedProxies::parse(&["10.0.0.0/8".into(), "ingress".into()]).unwrap_err();
        assert!(error.contains("`ingress`"), "{error}");
    }
}
