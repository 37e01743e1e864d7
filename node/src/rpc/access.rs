//! Who may talk to the RPC server from a browser: geth's `--http.vhosts` (the `Host` of plain
//! HTTP requests, against DNS rebinding) and `--ws.origins` (the `Origin` of WebSocket upgrades,
//! which browsers send and no CORS check guards).

use futures::future::BoxFuture;
use jsonrpsee::{
    core::BoxError,
    server::{HttpBody, HttpRequest, HttpResponse, ws::is_upgrade_request},
};
use std::{
    net::IpAddr,
    sync::Arc,
    task::{Context, Poll},
};

/// The allowed hosts and origins.
#[derive(Debug, Clone)]
pub struct AccessRules {
    /// Host names plain HTTP requests may name (`*`: any). IP addresses are always allowed, as
    /// geth does: rebinding needs a name.
    pub vhosts: Vec<String>,
    /// Origins WebSocket upgrades may come from: `*`, `scheme://host[:port]`, `host[:port]` or
    /// `scheme://*`; a rule without a port allows any port. Requests without an `Origin` (no
    /// browser) are allowed.
    pub ws_origins: Vec<String>,
}

impl AccessRules {
    /// The default origins: pages served from this machine only.
    pub fn local_origins() -> Vec<String> {
        ["http://localhost", "http://127.0.0.1", "http://[::1]"]
            .map(String::from)
            .to_vec()
    }

    /// `--dev` adds browser wallets' extension pages to the local origins.
    pub fn dev_origins() -> Vec<String> {
        let mut origins = Self::local_origins();
        origins.extend(["chrome-extension://*", "moz-extension://*"].map(String::from));
        origins
    }

    fn host_allowed(&self, host: Option<&str>) -> bool {
        // No Host header: no browser sent it.
        let Some(host) = host else { return true };
        let name = strip_port(host);
        name.trim_matches(['[', ']']).parse::<IpAddr>().is_ok()
            || self
                .vhosts
                .iter()
                .any(|v| v == "*" || strip_port(v).eq_ignore_ascii_case(name))
    }

    fn origin_allowed(&self, origin: Option<&str>) -> bool {
        let Some(origin) = origin else { return true };
        let origin = origin.to_ascii_lowercase();
        let (scheme, rest) = origin.split_once("://").unwrap_or(("", &origin));
        let (host, port) = split_port(rest);
        // Browsers leave out a scheme's default port.
        let port = port.or(match scheme {
            "http" | "ws" => Some("80"),
            "https" | "wss" => Some("443"),
            _ => None,
        });
        self.ws_origins.iter().any(|rule| {
            let rule = rule.to_ascii_lowercase();
            if rule == "*" {
                return true;
            }
            let (rule_scheme, rule_rest) = match rule.split_once("://") {
                Some((s, r)) => (Some(s.to_string()), r.to_string()),
                None => (None, rule.clone()),
            };
            let (rule_host, rule_port) = split_port(&rule_rest);
            rule_scheme.is_none_or(|s| s == scheme)
                && (rule_host == "*" || rule_host == host)
                && rule_port.is_none_or(|p| Some(p) == port)
        })
    }
}

/// `host:port` → `host` (IPv6 literals keep their brackets).
fn strip_port(authority: &str) -> &str {
    split_port(authority).0
}

fn split_port(authority: &str) -> (&str, Option<&str>) {
    match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => (&authority[..i], Some(&authority[i + 1..])),
        _ => (authority, None),
    }
}

/// The tower layer enforcing [`AccessRules`].
#[derive(Debug, Clone)]
pub(crate) struct AccessLayer(pub(crate) Arc<AccessRules>);

impl<S> tower::Layer<S> for AccessLayer {
    type Service = Access<S>;
    fn layer(&self, inner: S) -> Access<S> {
        Access {
            rules: self.0.clone(),
            inner,
        }
    }
}

/// See [`AccessLayer`].
#[derive(Debug, Clone)]
pub(crate) struct Access<S> {
    rules: Arc<AccessRules>,
    inner: S,
}

fn forbidden(message: &'static str) -> HttpResponse {
    HttpResponse::builder()
        .status(hyper::StatusCode::FORBIDDEN)
        .header(hyper::header::CONTENT_TYPE, "text/plain")
        .body(HttpBody::from(message))
        .expect("a static response is valid")
}

impl<S, B> tower::Service<HttpRequest<B>> for Access<S>
where
    S: tower::Service<HttpRequest<B>, Response = HttpResponse, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<HttpResponse, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequest<B>) -> Self::Future {
        // A header that is not text is refused, not taken as missing.
        const UNREADABLE: &str = "\u{0}";
        let header = |name| {
            request
                .headers()
                .get(name)
                .map(|v: &hyper::header::HeaderValue| v.to_str().unwrap_or(UNREADABLE))
        };
        let denied = if is_upgrade_request(&request) {
            (!self.rules.origin_allowed(header(hyper::header::ORIGIN)))
                .then_some("invalid origin specified")
        } else {
            let host = header(hyper::header::HOST).or(request.uri().host());
            (!self.rules.host_allowed(host)).then_some("invalid host specified")
        };
        match denied {
            Some(message) => Box::pin(async move { Ok(forbidden(message)) }),
            None => Box::pin(self.inner.call(request)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(vhosts: &[&str], origins: &[&str]) -> AccessRules {
        AccessRules {
            vhosts: vhosts.iter().map(|s| s.to_string()).collect(),
            ws_origins: origins.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn hosts_are_names_from_the_list_or_any_ip() {
        let r = rules(&["localhost"], &[]);
        for ok in [
            None,
            Some("localhost"),
            Some("LOCALHOST:8545"),
            Some("127.0.0.1:8545"),
            Some("[::1]:8545"),
            Some("10.1.2.3"),
        ] {
            assert!(r.host_allowed(ok), "{ok:?}");
        }
        for bad in [Some("evil.example"), Some("localhost.evil.example:8545")] {
            assert!(!r.host_allowed(bad), "{bad:?}");
        }
        assert!(rules(&["*"], &[]).host_allowed(Some("evil.example")));
        assert!(rules(&["node.example:8545"], &[]).host_allowed(Some("node.example:8545")));
        assert!(!r.host_allowed(Some("\u{0}")));
    }

    #[test]
    fn origins_match_scheme_host_and_port_rules() {
        let r = rules(
            &[],
            &AccessRules::dev_origins()
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        for ok in [
            None,
            Some("http://localhost:5173"),
            Some("http://127.0.0.1"),
            Some("chrome-extension://nkbihfbeogaeaoehlefnkodbefgpgknn"),
        ] {
            assert!(r.origin_allowed(ok), "{ok:?}");
        }
        for bad in [
            Some("https://evil.example"),
            Some("https://localhost"),
            Some("http://localhost.evil.example"),
            Some("null"),
        ] {
            assert!(!r.origin_allowed(bad), "{bad:?}");
        }
        let fixed = rules(&[], &["https://app.example:443", "wallet.example"]);
        assert!(fixed.origin_allowed(Some("https://app.example")));
        assert!(fixed.origin_allowed(Some("https://app.example:443")));
        assert!(!fixed.origin_allowed(Some("https://app.example:8443")));
        assert!(!fixed.origin_allowed(Some("\u{0}")));
        assert!(fixed.origin_allowed(Some("http://wallet.example:1")));
    }
}
