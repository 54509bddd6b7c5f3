//! Where a token may be sent: never over plain `http://` (except to loopback) unless allowed,
//! and, with an allow-list, only to the listed hosts.

use std::sync::Arc;

use http::Uri;
use http::uri::Scheme;

use crate::error::{DestinationError, DestinationErrorKind};
use crate::origin::is_loopback;

/// What the layer does with a request to a host that is not in its allow-list.
///
/// ```
/// use tower_bearer::{BearerTokenLayer, OtherHosts, StaticToken, Token};
///
/// // Calls to the partner API carry the token; calls elsewhere go out without it.
/// let layer = BearerTokenLayer::new(StaticToken::new(Token::new("t")))
///     .allowed_hosts(["api.partner.example"])
///     .other_hosts(OtherHosts::SendWithoutToken);
/// # let _ = layer;
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
    /// Send the request without adding a token.
    Skip,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct DestinationPolicy {
    pub(crate) allow_insecure_http: bool,
    /// Lower-case host names; `*.example.com` matches any subdomain of `example.com`.
    pub(crate) allowed_hosts: Option<Arc<[String]>>,
    pub(crate) other_hosts: OtherHosts,
}

impl DestinationPolicy {
    /// Whether a request to `uri` may carry the token.
    ///
    /// A URI without scheme and host (as tonic's `Channel` sees, which adds its own origin) has
    /// its destination fixed by the inner service and is not checked.
    #[inline]
    pub(crate) fn check(&self, uri: &Uri) -> Result<Verdict, DestinationError> {
        // `scheme_str` rather than comparing `Scheme`s, whose `eq` is not inlined: `http` keeps
        // a lower-case `https` only as its standard scheme, so this is the same test.
        if self.allowed_hosts.is_none() && uri.scheme_str() == Some("https") {
            return Ok(Verdict::Attach);
        }
        self.check_slow(uri)
    }

    fn check_slow(&self, uri: &Uri) -> Result<Verdict, DestinationError> {
        let Some(host) = uri.host() else {
            return Ok(Verdict::Attach);
        };
        if let Some(allowed) = &self.allowed_hosts
            && !allowed.iter().any(|pattern| host_matches(pattern, host))
        {
            return match self.other_hosts {
                OtherHosts::Reject => Err(DestinationError::new(
                    DestinationErrorKind::HostNotAllowed,
                    host,
                )),
                OtherHosts::SendWithoutToken => Ok(Verdict::Skip),
            };
        }
        // A host without a scheme (authority form) is not known to be https.
        let secure = uri.scheme() == Some(&Scheme::HTTPS);
        if secure || self.allow_insecure_http || is_loopback(host) {
            Ok(Verdict::Attach)
        } else {
            Err(DestinationError::new(
                DestinationErrorKind::InsecureScheme,
                host,
            ))
        }
    }
}

pub(crate) fn normalize_pattern(pattern: &str) -> String {
    pattern.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn host_matches(pattern: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.');
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            host.len() > suffix.len() + 1
                && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
        }
        None => host.eq_ignore_ascii_case(pattern),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: Option<&[&str]>, other: OtherHosts, insecure: bool) -> DestinationPolicy {
        DestinationPolicy {
            allow_insecure_http: insecure,
            allowed_hosts: allowed.map(|a| a.iter().map(|h| normalize_pattern(h)).collect()),
            other_hosts: other,
        }
    }

    fn check(p: &DestinationPolicy, uri: &str) -> Result<Verdict, DestinationErrorKind> {
        p.check(&uri.parse().unwrap()).map_err(|e| e.kind())
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
    fn relative_uris_are_not_checked() {
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
    fn allow_list_matches_hosts_and_wildcards() {
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
        assert_eq!(check(&p, "https://other.example.com/"), Ok(Verdict::Skip));
        // Without a token, plain http is the caller's own business.
        assert_eq!(check(&p, "http://other.example.com/"), Ok(Verdict::Skip));
    }
}
