//! Where a token may be sent: only to the origin the caller addressed, never over plain
//! `http://` (except to loopback) unless allowed, with an allow-list only to the listed hosts,
//! never where the `Host` header says otherwise, and never to another origin a redirect led to.

use std::sync::Arc;

use http::header::HOST;
use http::{Extensions, HeaderMap, Request, Uri};

use crate::error::{DestinationConfigError, DestinationError, DestinationErrorKind};
use crate::origin::{Origin, default_port, is_loopback};
use crate::redirect::PinnedOrigin;

/// What the layer does with a request to a host that is not in its allow-list.
///
/// ```
/// use tower_bearer::{BearerTokenLayer, OtherHosts, StaticToken, Token};
///
/// // Calls to the partner API carry the token; calls elsewhere go out without it.
/// let layer = BearerTokenLayer::new(StaticToken::new(Token::new("t")))
///     .allowed_hosts(["api.partner.example"])?
///     .other_hosts(OtherHosts::SendWithoutToken);
/// # let _ = layer;
/// # Ok::<(), tower_bearer::error::DestinationConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OtherHosts {
    /// Fail the request with [`Error::Destination`](crate::Error::Destination); it is not sent.
    /// The default: a misrouted request never leaks the token.
    #[default]
    Reject,
    /// Send the request as it is, without adding a token.
    SendWithoutToken,
}

/// What to do with a request's destination.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Add the token.
    Attach,
    /// Send the request without adding a token, for this reason (`None`: not ours to judge,
    /// such as a request that carries its own `Authorization`).
    Skip(DestinationErrorKind),
}

/// One entry of the allow-list: `host`, `host:port`, `*.suffix`, `*.suffix:port`, each
/// optionally with `https://` or `http://`; `host:*` for any port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HostPattern {
    /// `None`: any scheme (the scheme check applies separately).
    scheme: Option<Box<str>>,
    host: HostMatch,
    port: PortMatch,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostMatch {
    /// Exactly this host (lower case, no trailing dot).
    Exact(Box<str>),
    /// Any subdomain of this suffix (lower case, no trailing dot), not the suffix itself.
    Subdomains(Box<str>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PortMatch {
    /// The request scheme's default port (443 for https, 80 for http).
    Default,
    Exact(u16),
    Any,
}

impl HostPattern {
    pub(crate) fn parse(input: &str) -> Result<Self, DestinationConfigError> {
        let error = |reason| DestinationConfigError::new(input, reason);
        let text = input.trim();
        let (scheme, authority) = match text.split_once("://") {
            Some((scheme, rest)) => {
                let scheme = scheme.to_ascii_lowercase();
                if default_port(&scheme).is_none() {
                    return Err(error("the scheme must be `https` or `http`"));
                }
                (
                    Some(scheme.into_boxed_str()),
                    rest.strip_suffix('/').unwrap_or(rest),
                )
            }
            None => (None, text),
        };
        if authority.is_empty() {
            return Err(error("it names no host"));
        }
        if authority.contains(['/', '?', '#', '@', ' ', '\\']) {
            return Err(error(
                "an entry is a host with an optional scheme and port, without path, query or \
                 user information",
            ));
        }
        let (host, port) = split_host_port(authority)
            .ok_or_else(|| error("the port is not a number from 1 to 65535 or `*`"))?;
        if host.contains(':') && !host.starts_with('[') {
            return Err(error("write an IPv6 address in brackets: `[::1]:8443`"));
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let host = match host.strip_prefix("*.") {
            Some(suffix) if !suffix.is_empty() && !suffix.contains('*') => {
                HostMatch::Subdomains(suffix.into())
            }
            Some(_) => return Err(error("a wildcard needs a domain after `*.`")),
            None if host.is_empty() => return Err(error("it names no host")),
            None if host.contains('*') => {
                return Err(error(
                    "`*` is allowed only as a whole first label: `*.example.com`",
                ));
            }
            None => HostMatch::Exact(host.into()),
        };
        Ok(Self { scheme, host, port })
    }

    /// Whether a request to `host:port` over `scheme` (`None` when the request does not say,
    /// as an origin-form request with a `Host` header) matches. `port` is `None` when the
    /// request gave none and its scheme is unknown.
    fn matches(&self, scheme: Option<&str>, host: &str, port: Option<u16>) -> bool {
        if let (Some(want), Some(have)) = (&self.scheme, scheme)
            && **want != *have
        {
            return false;
        }
        let port_ok = match self.port {
            PortMatch::Any => true,
            PortMatch::Exact(want) => port == Some(want),
            PortMatch::Default => match (scheme.or(self.scheme.as_deref()), port) {
                (Some(scheme), Some(port)) => default_port(scheme) == Some(port),
                (Some(_), None) => true,
                // Neither the request nor the entry names a scheme: either default port.
                (None, Some(port)) => port == 443 || port == 80,
                (None, None) => true,
            },
        };
        port_ok && host_matches(&self.host, host)
    }
}

/// Splits `host[:port]` (IPv6 in brackets). `None` for a port that is not a number in
/// `1..=65535` or `*`.
fn split_host_port(authority: &str) -> Option<(&str, PortMatch)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => PortMatch::Default,
        Some("*") => PortMatch::Any,
        Some(text) => match text.parse::<u16>() {
            Ok(port) if port != 0 && text.bytes().all(|b| b.is_ascii_digit()) => {
                PortMatch::Exact(port)
            }
            _ => return None,
        },
    };
    Some((host, port))
}

fn host_matches(pattern: &HostMatch, host: &str) -> bool {
    let host = host.trim_end_matches('.');
    match pattern {
        HostMatch::Subdomains(suffix) => {
            host.len() > suffix.len() + 1
                && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
        }
        HostMatch::Exact(exact) => host.eq_ignore_ascii_case(exact),
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct DestinationPolicy {
    pub(crate) allow_insecure_http: bool,
    pub(crate) allowed_hosts: Option<Arc<[HostPattern]>>,
    pub(crate) other_hosts: OtherHosts,
    /// The origin of requests whose URI has none (a tonic `Channel`'s), named by the user.
    pub(crate) origin: Option<Arc<Origin>>,
}

impl DestinationPolicy {
    /// Whether `request` may carry the token.
    #[inline]
    pub(crate) fn check<B>(&self, request: &Request<B>) -> Result<Verdict, DestinationError> {
        self.check_parts(request.uri(), request.headers(), request.extensions())
    }

    /// Whether a request with this URI, these headers and these extensions may carry the
    /// token: the one check of the layer and of the reqwest middleware (whose requests are not
    /// `http::Request`s).
    ///
    /// The common case (no allow-list, no named origin, an `https` URI, no extensions) is
    /// decided inline; everything else out of line.
    #[inline]
    pub(crate) fn check_parts(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> Result<Verdict, DestinationError> {
        // `scheme_str` rather than comparing `Scheme`s, whose `eq` is not inlined: `http` keeps
        // a lower-case `https` only as its standard scheme, so this is the same test.
        if self.allowed_hosts.is_none()
            && self.origin.is_none()
            && uri.scheme_str() == Some("https")
            && extensions.is_empty()
        {
            return Ok(Verdict::Attach);
        }
        self.check_slow(uri, headers, extensions.get::<PinnedOrigin>())
    }

    /// Sets the allow-list (see `BearerTokenLayer::allowed_hosts`).
    pub(crate) fn set_allowed_hosts<I>(&mut self, hosts: I) -> Result<(), DestinationConfigError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let hosts = hosts
            .into_iter()
            .map(|h| HostPattern::parse(h.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        self.allowed_hosts = Some(hosts.into());
        Ok(())
    }

    /// Names the one origin the token is for (see `BearerTokenLayer::origin`).
    pub(crate) fn set_origin(&mut self, origin: &str) -> Result<(), DestinationConfigError> {
        let parsed =
            Origin::parse(origin).map_err(|reason| DestinationConfigError::new(origin, reason))?;
        self.origin = Some(Arc::new(parsed));
        Ok(())
    }

    #[inline(never)]
    fn check_slow(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        pinned: Option<&PinnedOrigin>,
    ) -> Result<Verdict, DestinationError> {
        let refuse = |kind, host: &str| Err(DestinationError::new(kind, host));
        let uri_host = uri.host().filter(|h| !h.is_empty());
        // The origin the request goes to: its URI's, or for an origin-form URI the one the
        // user named for the channel.
        let own = Origin::of(uri);
        let origin = match (&own, uri_host) {
            (Some(own), _) => Some(own),
            (None, None) => self.origin.as_deref(),
            // A host without a scheme (authority form): judged below, never as the named origin.
            (None, Some(_)) => None,
        };
        let guarded = self.allowed_hosts.is_some() || self.origin.is_some();

        // A hop of a pinned redirect chain to another origin never carries the token.
        if let Some(pinned) = pinned
            && origin.is_none_or(|o| o != pinned.origin())
        {
            return Ok(Verdict::Skip(DestinationErrorKind::CrossOriginRedirect));
        }

        // The named origin is the only one this layer's token is for.
        if let (Some(named), Some(host)) = (&self.origin, uri_host)
            && own.as_ref() != Some(&**named)
        {
            return self.other_host(host);
        }

        // The `Host` header must name the URI's host and port; for an origin-form request it
        // is the destination, so it must be allowed. Only one: a proxy that routes by another
        // than the first would take the token elsewhere.
        if guarded && let Some(host_header) = headers.get(HOST) {
            if headers.get_all(HOST).iter().nth(1).is_some() {
                return refuse(DestinationErrorKind::HostMismatch, "(several Host headers)");
            }
            let Some((host, port)) = host_header
                .to_str()
                .ok()
                .and_then(|h| split_host_port(h.trim()))
                .filter(|(h, _)| !h.is_empty())
            else {
                return refuse(
                    DestinationErrorKind::HostMismatch,
                    "(unreadable Host header)",
                );
            };
            let port = match port {
                PortMatch::Exact(p) => Some(p),
                PortMatch::Default => None,
                PortMatch::Any => {
                    return refuse(DestinationErrorKind::HostMismatch, host);
                }
            };
            match origin {
                Some(origin) => {
                    let port = port.or(default_port(origin.scheme()));
                    if !host
                        .trim_end_matches('.')
                        .eq_ignore_ascii_case(origin.host().trim_end_matches('.'))
                        || port != Some(origin.port())
                    {
                        return refuse(DestinationErrorKind::HostMismatch, host);
                    }
                }
                None => {
                    if let Some(allowed) = &self.allowed_hosts
                        && !allowed.iter().any(|p| p.matches(None, host, port))
                    {
                        return self.other_host(host);
                    }
                }
            }
        }

        let Some(host) = uri_host else {
            // No host in the URI and no named origin: the inner service fixes the
            // destination (as tonic's `Channel` does).
            return match origin {
                Some(origin) => self.check_origin(origin),
                None => Ok(Verdict::Attach),
            };
        };
        match origin {
            Some(origin) => self.check_origin(origin),
            None => {
                // A host without a scheme (authority form), or a scheme without a default
                // port: not known to be https.
                if let Some(allowed) = &self.allowed_hosts
                    && !allowed
                        .iter()
                        .any(|p| p.matches(uri.scheme_str(), host, uri.port_u16()))
                {
                    return self.other_host(host);
                }
                if self.allow_insecure_http || is_loopback(host) {
                    Ok(Verdict::Attach)
                } else {
                    refuse(DestinationErrorKind::InsecureScheme, host)
                }
            }
        }
    }

    fn check_origin(&self, origin: &Origin) -> Result<Verdict, DestinationError> {
        if let Some(allowed) = &self.allowed_hosts
            && !allowed
                .iter()
                .any(|p| p.matches(Some(origin.scheme()), origin.host(), Some(origin.port())))
        {
            return self.other_host(origin.host());
        }
        if origin.is_https() || self.allow_insecure_http || is_loopback(origin.host()) {
            Ok(Verdict::Attach)
        } else {
            Err(DestinationError::new(
                DestinationErrorKind::InsecureScheme,
                origin.host(),
            ))
        }
    }

    fn other_host(&self, host: &str) -> Result<Verdict, DestinationError> {
        match self.other_hosts {
            OtherHosts::Reject => Err(DestinationError::new(
                DestinationErrorKind::HostNotAllowed,
                host,
            )),
            OtherHosts::SendWithoutToken => Ok(Verdict::Skip(DestinationErrorKind::HostNotAllowed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: Option<&[&str]>, other: OtherHosts, insecure: bool) -> DestinationPolicy {
        DestinationPolicy {
            allow_insecure_http: insecure,
            allowed_hosts: allowed
                .map(|a| a.iter().map(|h| HostPattern::parse(h).unwrap()).collect()),
            other_hosts: other,
            origin: None,
        }
    }

    fn request(uri: &str, host: Option<&str>) -> Request<()> {
        let mut request = Request::get(uri).body(()).unwrap();
        if let Some(host) = host {
            request.headers_mut().insert(HOST, host.parse().unwrap());
        }
        request
    }

    fn check(p: &DestinationPolicy, uri: &str) -> Result<Verdict, DestinationErrorKind> {
        p.check(&request(uri, None)).map_err(|e| e.kind())
    }

    fn check_host(
        p: &DestinationPolicy,
        uri: &str,
        host: &str,
    ) -> Result<Verdict, DestinationErrorKind> {
        p.check(&request(uri, Some(host))).map_err(|e| e.kind())
    }

    #[test]
    fn plain_http_is_refused_except_to_loopback() {
        let p = policy(None, OtherHosts::Reject, false);
        assert_eq!(check(&p, "https://api.example.com/x"), Ok(Verdict::Attach));
        assert_eq!(
            check(&p, "http://api.example.com/x"),
            Err(DestinationErrorKind::InsecureScheme)
        );
        for uri in [
            "http://localhost:8080/",
            "http://LOCALHOST/",
            "http://127.0.0.1/",
            "http://127.8.9.10:1/",
            "http://[::1]:80/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert_eq!(check(&p, uri), Ok(Verdict::Attach), "{uri}");
        }
        for uri in [
            "http://localhost.example.com/",
            "http://api.localhost/",
            "http://localhost./",
            "http://127.0.0.1./",
            "http://10.0.0.1/",
            "http://[::2]/",
            "http://notlocalhost/",
        ] {
            assert_eq!(
                check(&p, uri),
                Err(DestinationErrorKind::InsecureScheme),
                "{uri}"
            );
        }
        let p = policy(None, OtherHosts::Reject, true);
        assert_eq!(check(&p, "http://api.example.com/x"), Ok(Verdict::Attach));
    }

    #[test]
    fn relative_uris_are_not_checked_without_a_named_origin() {
        let p = policy(Some(&["api.example.com"]), OtherHosts::Reject, false);
        assert_eq!(check(&p, "/package.Service/Method"), Ok(Verdict::Attach));
    }

    #[test]
    fn a_host_without_a_scheme_is_not_trusted() {
        let p = policy(None, OtherHosts::Reject, false);
        assert_eq!(
            check(&p, "api.example.com:80"),
            Err(DestinationErrorKind::InsecureScheme)
        );
        assert_eq!(check(&p, "localhost:80"), Ok(Verdict::Attach));
    }

    #[test]
    fn allow_list_matches_hosts_and_wildcards_on_default_ports() {
        let p = policy(
            Some(&["API.example.com", "*.partner.example."]),
            OtherHosts::Reject,
            false,
        );
        assert_eq!(check(&p, "https://api.example.com/"), Ok(Verdict::Attach));
        assert_eq!(
            check(&p, "https://Api.Example.Com:443/"),
            Ok(Verdict::Attach)
        );
        assert_eq!(
            check(&p, "https://eu.partner.example/"),
            Ok(Verdict::Attach)
        );
        assert_eq!(
            check(&p, "https://a.b.partner.example/"),
            Ok(Verdict::Attach)
        );
        for uri in [
            "https://partner.example/",
            "https://evilpartner.example/",
            "https://api.example.com.evil.net/",
            "https://other.example.com/",
            // A host entry without a port means the scheme's default port only.
            "https://api.example.com:8443/",
            "https://eu.partner.example:444/",
        ] {
            assert_eq!(
                check(&p, uri),
                Err(DestinationErrorKind::HostNotAllowed),
                "{uri}"
            );
        }
        // Allowed, but still not over plain http.
        assert_eq!(
            check(&p, "http://api.example.com/"),
            Err(DestinationErrorKind::InsecureScheme)
        );
        let p = policy(
            Some(&["api.example.com"]),
            OtherHosts::SendWithoutToken,
            false,
        );
        assert_eq!(
            check(&p, "https://other.example.com/"),
            Ok(Verdict::Skip(DestinationErrorKind::HostNotAllowed))
        );
        // Without a token, plain http is the caller's own business.
        assert_eq!(
            check(&p, "http://other.example.com/"),
            Ok(Verdict::Skip(DestinationErrorKind::HostNotAllowed))
        );
    }

    #[test]
    fn allow_list_entries_may_name_a_port_and_a_scheme() {
        let p = policy(
            Some(&[
                "api.example.com:8443",
                "*.partner.example:9443",
                "https://secure.example",
                "http://localhost:*",
                "[::1]:7000",
            ]),
            OtherHosts::Reject,
            false,
        );
        for uri in [
            "https://api.example.com:8443/",
            "https://eu.partner.example:9443/",
            "https://secure.example/",
            "https://secure.example:443/",
            "http://localhost:1234/",
            "http://localhost/",
            "https://[::1]:7000/",
        ] {
            assert_eq!(check(&p, uri), Ok(Verdict::Attach), "{uri}");
        }
        for uri in [
            "https://api.example.com/",
            "https://api.example.com:8444/",
            "https://eu.partner.example/",
            "https://secure.example:8443/",
            "http://secure.example/",
            "https://localhost:1234/",
            "https://[::1]:7001/",
        ] {
            assert_eq!(
                check(&p, uri),
                Err(DestinationErrorKind::HostNotAllowed),
                "{uri}"
            );
        }
    }

    #[test]
    fn bad_allow_list_entries_are_refused_with_what_to_fix() {
        for bad in [
            "",
            "https://",
            "ftp://files.example",
            "api.example.com:0",
            "api.example.com:99999",
            "api.example.com:x",
            "api.example.com/path",
            "user@api.example.com",
            "*.",
            "a.*.example",
            "[::1",
            "::1",
        ] {
            let err = HostPattern::parse(bad).expect_err(bad);
            assert!(err.to_string().contains("api.example.com:8443"), "{err}");
        }
        // User information is never echoed.
        for bad in [
            "user:hunter2@api.example.com",
            "https://user:hunter2@api.example.com",
        ] {
            let err = HostPattern::parse(bad).expect_err(bad);
            assert!(!format!("{err} {err:?}").contains("hunter2"), "{err}");
        }
        let err = Origin::parse("https://user:hunter2@grpc.example")
            .map_err(|reason| {
                DestinationConfigError::new("https://user:hunter2@grpc.example", reason)
            })
            .unwrap_err();
        assert!(!format!("{err} {err:?}").contains("hunter2"), "{err}");
    }

    #[test]
    fn host_header_must_name_the_uri_origin() {
        let p = policy(Some(&["api.example.com"]), OtherHosts::Reject, false);
        assert_eq!(
            check_host(&p, "https://api.example.com/", "api.example.com"),
            Ok(Verdict::Attach)
        );
        assert_eq!(
            check_host(&p, "https://api.example.com/", "API.example.com:443"),
            Ok(Verdict::Attach)
        );
        for host in [
            "evil.example",
            "api.example.com:8443",
            "api.example.com:*",
            "api.example.com.evil",
        ] {
            assert_eq!(
                check_host(&p, "https://api.example.com/", host),
                Err(DestinationErrorKind::HostMismatch),
                "{host}"
            );
        }
        // Origin-form: the Host header is the destination.
        assert_eq!(
            check_host(&p, "/v1/items", "api.example.com"),
            Ok(Verdict::Attach)
        );
        assert_eq!(
            check_host(&p, "/v1/items", "evil.example"),
            Err(DestinationErrorKind::HostNotAllowed)
        );
        // Without a Host header (tonic), an origin-form request still works.
        assert_eq!(check(&p, "/v1/items"), Ok(Verdict::Attach));
    }

    #[test]
    fn a_named_origin_stands_for_origin_form_requests() {
        let mut p = policy(None, OtherHosts::Reject, false);
        p.origin = Some(Arc::new(
            Origin::parse("http://grpc.internal:50051").unwrap(),
        ));
        assert_eq!(
            check(&p, "/grpc.health.v1.Health/Check"),
            Err(DestinationErrorKind::InsecureScheme)
        );
        p.origin = Some(Arc::new(
            Origin::parse("https://grpc.internal:50051").unwrap(),
        ));
        assert_eq!(
            check(&p, "/grpc.health.v1.Health/Check"),
            Ok(Verdict::Attach)
        );
        assert_eq!(
            check(&p, "https://grpc.internal:50051/x"),
            Ok(Verdict::Attach)
        );
        assert_eq!(
            check(&p, "https://grpc.internal:50052/x"),
            Err(DestinationErrorKind::HostNotAllowed)
        );
        assert_eq!(
            check_host(&p, "/x", "other.internal:50051"),
            Err(DestinationErrorKind::HostMismatch)
        );
        p.allowed_hosts = Some(Arc::from([HostPattern::parse("other.example").unwrap()]));
        assert_eq!(
            check(&p, "/grpc.health.v1.Health/Check"),
            Err(DestinationErrorKind::HostNotAllowed)
        );
    }

    #[test]
    fn a_pinned_hop_to_another_origin_goes_without_the_token() {
        let p = policy(None, OtherHosts::Reject, false);
        let pin = PinnedOrigin::new(Origin::parse("https://api.example.com").unwrap());
        let mut same = request("https://api.example.com/next", None);
        same.extensions_mut().insert(pin.clone());
        assert_eq!(p.check(&same), Ok(Verdict::Attach));
        for uri in [
            "https://api.example.com:8443/",
            "https://cdn.example/x",
            "http://api.example.com/",
        ] {
            let mut hop = request(uri, None);
            hop.extensions_mut().insert(pin.clone());
            assert_eq!(
                p.check(&hop),
                Ok(Verdict::Skip(DestinationErrorKind::CrossOriginRedirect)),
                "{uri}"
            );
        }
    }
}
