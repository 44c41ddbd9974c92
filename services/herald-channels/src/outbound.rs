//! Outbound HTTP to URLs a tenant gave us (Slack and Discord webhook URLs, customer webhook
//! endpoints), guarded against server-side request forgery: a tenant must not be able to make the
//! worker call into our own network, the cloud metadata service or any other non-public address.
//!
//! Two guards, and the caller needs both:
//!
//! - [`check_url`], before each request: the scheme (https only, unless private networks are
//!   allowed), no credentials in the URL, no IP-literal host in a forbidden range, no local or
//!   internal host name. IP literals must be checked here because the HTTP connector never asks
//!   the DNS resolver about them.
//! - [`guarded_client`], for the request itself: its DNS resolver drops every forbidden address a
//!   name resolves to, at connect time. Checking at connect time (not before, with a separate
//!   look-up) is what defeats DNS rebinding: the addresses vetted are the addresses connected to.
//!   It follows no redirect (a public endpoint could otherwise answer "302 to
//!   http://169.254.169.254/") and uses no proxy (a proxy resolves names itself, out of our sight).
//!
//! A refusal by either is a permanent failure of the delivery: the same URL will be refused again.
//! [`find_forbidden_resolution`] tells the resolver's refusal apart from a transport error, which
//! is worth retrying.
//!
//! `allow_private_networks` turns both guards off, for local development and tests that serve
//! webhooks on 127.0.0.1; it must never be set in production.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub use herald_domain::outbound_url::{
    check_url, forbidden_range, is_forbidden_address, ForbiddenRange, OutboundRefusal,
};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::HeaderValue;
use reqwest::redirect;

/// How long a connection (resolution excluded) may take to establish. The caller's per-request
/// timeout bounds the whole call; this one makes an unreachable host fail fast within it.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The user agent sent when the one given is not a valid header value.
const FALLBACK_USER_AGENT: &str = "herald";

/// At most this many forbidden addresses are named in a [`ForbiddenResolution`]'s message.
const MAX_NAMED_FORBIDDEN_ADDRESSES: usize = 4;

/// The resolver's refusal: every address the host resolves to is forbidden. It reaches the caller
/// inside a `reqwest::Error`; [`find_forbidden_resolution`] digs it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForbiddenResolution {
    pub host: String,
    /// The first few addresses it resolved to, and why each is forbidden.
    pub forbidden: Vec<(IpAddr, ForbiddenRange)>,
}

impl fmt::Display for ForbiddenResolution {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "the host `{}` resolves only to forbidden addresses:",
            self.host
        )?;
        for (index, (address, range)) in self.forbidden.iter().enumerate() {
            let separator = if index == 0 { " " } else { ", " };
            write!(formatter, "{separator}{address} ({range})")?;
        }
        Ok(())
    }
}

impl StdError for ForbiddenResolution {}

/// The resolver's refusal in an error's chain of sources, if that is why the request failed.
/// The caller maps it to a permanent failure, unlike other connection errors.
pub fn find_forbidden_resolution<'a>(
    error: &'a (dyn StdError + 'static),
) -> Option<&'a ForbiddenResolution> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(refusal) = error.downcast_ref::<ForbiddenResolution>() {
            return Some(refusal);
        }
        current = error.source();
    }
    None
}

/// A client for tenant-given URLs: no redirects, no proxy, a connect timeout and, unless
/// `allow_private_networks`, a resolver that drops forbidden addresses and https only. Use it
/// together with [`check_url`], which guards the IP literals this client's resolver never sees.
pub fn guarded_client(allow_private_networks: bool, user_agent: &str) -> reqwest::Client {
    guarded_client_builder(allow_private_networks, user_agent)
        .build()
        .expect("a client with rustls, fixed settings and a valid user agent always builds")
}

/// The builder of [`guarded_client`], for a caller that wants to tune its pool. Calling
/// `redirect`, `proxy`, `dns_resolver`, `resolve` or `https_only` on it undoes a guard.
pub fn guarded_client_builder(
    allow_private_networks: bool,
    user_agent: &str,
) -> reqwest::ClientBuilder {
    let user_agent = HeaderValue::from_str(user_agent).unwrap_or_else(|_| {
        tracing::warn!(
            user_agent,
            "not a valid user agent header: sending {FALLBACK_USER_AGENT}"
        );
        HeaderValue::from_static(FALLBACK_USER_AGENT)
    });
    let builder = reqwest::Client::builder()
        .user_agent(user_agent)
        // A redirect is an answer like any other: following it would call a URL nobody checked.
        .redirect(redirect::Policy::none())
        // HTTP(S)_PROXY in the environment would hand name resolution to the proxy.
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    if allow_private_networks {
        return builder;
    }
    builder
        .https_only(true)
        .dns_resolver(Arc::new(PublicAddressesOnly))
}

/// What a `reqwest` resolver fails with.
type BoxError = Box<dyn StdError + Send + Sync>;

/// The guarded client's resolver: the system's (getaddrinfo, on tokio's blocking pool, so the
/// runtime never waits on it), less every forbidden address.
#[derive(Debug, Clone, Copy)]
struct PublicAddressesOnly;

impl Resolve for PublicAddressesOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(resolve_public_addresses(name.as_str().to_owned()))
    }
}

async fn resolve_public_addresses(host: String) -> Result<Addrs, BoxError> {
    // Port 0: the connector puts the URL's port on every address.
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
    if resolved.is_empty() {
        let error = io::Error::new(
            io::ErrorKind::NotFound,
            format!("the host `{host}` resolves to no address"),
        );
        return Err(error.into());
    }
    let public = keep_public_addresses(&host, resolved)?;
    Ok(Box::new(public.into_iter()) as Addrs)
}

/// The public addresses among those `host` resolved to, or the refusal when there is none.
fn keep_public_addresses(
    host: &str,
    resolved: Vec<SocketAddr>,
) -> Result<Vec<SocketAddr>, ForbiddenResolution> {
    debug_assert!(!resolved.is_empty(), "an empty resolution is not a refusal");
    let mut forbidden = Vec::new();
    let public: Vec<SocketAddr> = resolved
        .into_iter()
        .filter(|address| match forbidden_range(address.ip()) {
            None => true,
            Some(range) => {
                if forbidden.len() < MAX_NAMED_FORBIDDEN_ADDRESSES {
                    forbidden.push((address.ip(), range));
                }
                false
            }
        })
        .collect();
    if !forbidden.is_empty() {
        // Worth knowing even when a public address remains: the name is half pointing inside.
        tracing::debug!(host, dropped = ?forbidden, "dropped forbidden resolved addresses");
    }
    if public.is_empty() {
        return Err(ForbiddenResolution {
            host: host.to_owned(),
            forbidden,
        });
    }
    Ok(public)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_resolved_addresses_are_kept() {
        let resolved: Vec<SocketAddr> = ["127.0.0.1:0", "8.8.8.8:0", "[::1]:0", "[2001:db8::1]:0"]
            .iter()
            .map(|text| text.parse().unwrap())
            .collect();
        assert_eq!(
            keep_public_addresses("mixed.example", resolved),
            Ok(vec!["8.8.8.8:0".parse().unwrap()])
        );
        let refusal = keep_public_addresses("inside.example", vec!["10.1.2.3:0".parse().unwrap()])
            .unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "the host `inside.example` resolves only to forbidden addresses: 10.1.2.3 (private \
             10.0.0.0/8)"
        );
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_forbidden_addresses() {
        // `localhost` is in /etc/hosts: no DNS server is needed.
        let error = match PublicAddressesOnly
            .resolve("localhost".parse().unwrap())
            .await
        {
            Ok(addresses) => panic!("resolved to {:?}", addresses.collect::<Vec<_>>()),
            Err(error) => error,
        };
        let refusal = error
            .downcast_ref::<ForbiddenResolution>()
            .expect("a forbidden resolution");
        assert_eq!(refusal.host, "localhost");
        assert!(
            error
                .to_string()
                .contains("resolves only to forbidden addresses"),
            "{error}"
        );

        // A numeric name is resolved without DNS too.
        let addresses: Vec<SocketAddr> = PublicAddressesOnly
            .resolve("8.8.8.8".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert_eq!(addresses, vec!["8.8.8.8:0".parse().unwrap()]);
    }

    #[test]
    fn clients_build_whatever_the_user_agent() {
        let _client = guarded_client(false, "herald-worker/0.1 (+https://herald.example)");
        let _client = guarded_client(true, "herald-worker/0.1");
        let _client = guarded_client(false, "not\na header value");
    }
}

#[cfg(test)]
mod server_tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use actix_web::{web, App, HttpResponse, HttpServer};

    use super::*;

    fn error_chain(error: &(dyn StdError + 'static)) -> String {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(error) = source {
            text.push_str(": ");
            text.push_str(&error.to_string());
            source = error.source();
        }
        text
    }

    /// A server on 127.0.0.1 answering `/` with 200, `/redirect` with a 302 to `/landing`, and
    /// counting the calls to `/landing`.
    #[tokio::test]
    async fn the_guarded_client_reaches_local_servers_only_when_allowed_and_never_redirects() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let landings = Arc::new(AtomicUsize::new(0));
        let server_landings = landings.clone();
        let server = HttpServer::new(move || {
            let landings = server_landings.clone();
            App::new()
                .route(
                    "/",
                    web::get().to(|| async { HttpResponse::Ok().body("hello") }),
                )
                .route(
                    "/redirect",
                    web::get().to(move || async move {
                        HttpResponse::Found()
                            .insert_header(("location", format!("http://127.0.0.1:{port}/landing")))
                            .finish()
                    }),
                )
                .route(
                    "/landing",
                    web::get().to(move || {
                        let landings = landings.clone();
                        async move {
                            landings.fetch_add(1, Ordering::SeqCst);
                            HttpResponse::Ok().body("landed")
                        }
                    }),
                )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);

        // Not allowed: a name resolving to loopback is refused by the resolver...
        let guarded = guarded_client(false, "herald-test");
        let error = guarded
            .get(format!("https://localhost:{port}/"))
            .send()
            .await
            .expect_err("localhost is not reachable");
        let refusal = find_forbidden_resolution(&error)
            .unwrap_or_else(|| panic!("not the resolver's refusal: {}", error_chain(&error)));
        assert_eq!(refusal.host, "localhost");
        assert!(
            error_chain(&error).contains("resolves only to forbidden addresses"),
            "{}",
            error_chain(&error)
        );
        // ...plain http is refused by the client itself...
        let error = guarded
            .get(format!("http://localhost:{port}/"))
            .send()
            .await
            .expect_err("http is not allowed");
        assert!(find_forbidden_resolution(&error).is_none());
        // ...and the IP literal, which the resolver never sees, by check_url.
        let literal = url(&format!("http://127.0.0.1:{port}/"));
        assert_eq!(check_url(&literal, false), Err(OutboundRefusal::PlainHttp));
        let literal = url(&format!("https://127.0.0.1:{port}/"));
        assert!(matches!(
            check_url(&literal, false),
            Err(OutboundRefusal::ForbiddenAddress { .. })
        ));

        // Allowed: both paths reach the server.
        let open = guarded_client(true, "herald-test");
        let literal = url(&format!("http://127.0.0.1:{port}/"));
        assert_eq!(check_url(&literal, true), Ok(()));
        let response = open.get(literal).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "hello");
        let response = open
            .get(format!("http://localhost:{port}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);

        // A redirect is the answer, not followed.
        let response = open
            .get(format!("http://127.0.0.1:{port}/redirect"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302);
        assert_eq!(
            response.headers()["location"],
            format!("http://127.0.0.1:{port}/landing").as_str()
        );
        assert_eq!(
            landings.load(Ordering::SeqCst),
            0,
            "the redirect was followed"
        );

        handle.stop(false).await;
    }

    fn url(text: &str) -> reqwest::Url {
        reqwest::Url::parse(text).unwrap()
    }
}
