//! Outbound HTTP for guests that import `wasi:http/outgoing-handler`: each
//! request's destination is checked against the activity type's allow-list
//! (`allow_http`); a refused one fails with `HTTP-request-denied` in the
//! guest and is recorded in the attempt's denials.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use http::uri::Scheme;
use serde::Serialize;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// One allowed destination: `host`, `host:port`, `*.domain` or `*.domain:port`.
/// Without a port every port is allowed; `*.` allows every subdomain (not
/// the domain itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct HttpRule {
    /// Lower-case host name or IP literal (IPv6 without brackets).
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

impl FromStr for HttpRule {
    type Err = anyhow::Error;

    fn from_str(spec: &str) -> anyhow::Result<Self> {
        let bad = |why: &str| {
            anyhow::anyhow!("allowed HTTP host {spec:?} {why}; expected HOST, HOST:PORT, *.DOMAIN or *.DOMAIN:PORT")
        };
        if spec.contains("://") || spec.contains('/') {
            return Err(bad("must not have a scheme or path"));
        }
        let (host, port) = split_host_port(spec).ok_or_else(|| bad("has an invalid port"))?;
        let (wildcard, host) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, host),
        };
        let valid =
            !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '_'));
        if !valid {
            return Err(bad("is not a host name or IP address"));
        }
        Ok(HttpRule { host: host.to_ascii_lowercase(), wildcard, port })
    }
}

impl fmt::Display for HttpRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let star = if self.wildcard { "*." } else { "" };
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        match self.port {
            Some(p) => write!(f, "{star}{host}:{p}"),
            None => write!(f, "{star}{host}"),
        }
    }
}

impl From<HttpRule> for String {
    fn from(r: HttpRule) -> String {
        r.to_string()
    }
}

impl HttpRule {
    fn allows(&self, host: &str, port: u16) -> bool {
        let host_ok = if self.wildcard {
            host.strip_suffix(&self.host).is_some_and(|prefix| prefix.ends_with('.') && prefix.len() > 1)
        } else {
            host == self.host
        };
        host_ok && self.port.is_none_or(|p| p == port)
    }
}

/// `host[:port]`, `[v6][:port]` → (host, port).
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(p) => Some((host, Some(p.parse().ok()?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match s.rsplit_once(':') {
        // More than one colon without brackets: a bare IPv6 address.
        Some((host, _)) if host.contains(':') => Some((s, None)),
        Some((host, p)) => Some((host, Some(p.parse().ok()?))),
        None => Some((s, None)),
    }
}

/// The per-attempt hooks: the allow-list check in front of the default
/// client.
pub(crate) struct HttpHooks {
    pub allow: Arc<[HttpRule]>,
    pub denials: Arc<Mutex<Vec<String>>>,
}

type Sent = Box<
    dyn Future<Output = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>), Error>>
        + Send,
>;

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sent {
        let uri = request.uri();
        let host = uri.host().unwrap_or_default().trim_matches(['[', ']']).to_ascii_lowercase();
        let default_port = if uri.scheme() == Some(&Scheme::HTTPS) { 443 } else { 80 };
        let port = uri.port_u16().unwrap_or(default_port);
        if !self.allow.iter().any(|rule| rule.allows(&host, port)) {
            let why = if self.allow.is_empty() {
                "no outbound HTTP is granted".to_string()
            } else {
                format!(
                    "not in allow_http: {}",
                    self.allow.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                )
            };
            self.denials.lock().unwrap().push(format!("capability denied: HTTP {} {uri} ({why})", request.method()));
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        drop(fut);
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> HttpRule {
        s.parse().unwrap()
    }

    #[test]
    fn rules_match_host_port_and_subdomains() {
        assert!(rule("api.example.com").allows("api.example.com", 443));
        assert!(rule("api.example.com").allows("api.example.com", 8080));
        assert!(!rule("api.example.com").allows("example.com", 443));
        assert!(rule("127.0.0.1:8080").allows("127.0.0.1", 8080));
        assert!(!rule("127.0.0.1:8080").allows("127.0.0.1", 8081));
        assert!(rule("*.example.com").allows("a.b.example.com", 80));
        assert!(!rule("*.example.com").allows("example.com", 80));
        assert!(!rule("*.example.com").allows("badexample.com", 80));
        assert!(rule("[::1]:9000").allows("::1", 9000));
        assert!(rule("::1").allows("::1", 1));
        assert!(rule("API.Example.com").allows("api.example.com", 1));
    }

    #[test]
    fn bad_rules_say_what_is_expected() {
        for bad in ["https://x.com", "x.com/path", "x.com:http", "", "*.", "a b"] {
            let err = bad.parse::<HttpRule>().unwrap_err().to_string();
            assert!(err.contains("expected HOST, HOST:PORT, *.DOMAIN or *.DOMAIN:PORT"), "{bad}: {err}");
        }
    }
}
