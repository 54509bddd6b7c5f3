//! Origins (scheme, host, port) as RFC 6454 compares them, for the checks that decide where a
//! token or a client secret may go: the layer's destination policy and redirect guard, and the
//! token transport's check of where an answer came from.

use std::fmt;
use std::net::IpAddr;

use http::Uri;

/// The scheme, host and port of an absolute URI, normalised: the scheme and host in lower
/// case, the port made explicit (443 for `https`, 80 for `http`).
///
/// Two URIs have the same origin only if all three are equal. A host with a trailing dot is a
/// different host (a resolver may treat it differently), and a scheme other than `http` and
/// `https` has no default port, so it needs one to have an origin at all.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Origin {
    scheme: Box<str>,
    host: Box<str>,
    port: u16,
}

impl Origin {
    /// The origin of `uri`, or `None` for a URI without scheme or host (origin-form, as tonic
    /// uses), or with a scheme that has no default port and no explicit one.
    pub(crate) fn of(uri: &Uri) -> Option<Self> {
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let host = uri.host()?;
        if host.is_empty() {
            return None;
        }
        let port = match uri.port_u16() {
            Some(port) => port,
            None => default_port(&scheme)?,
        };
        Some(Self {
            scheme: scheme.into(),
            host: normalize_host(host).into(),
            port,
        })
    }

    /// Parses `text` as an absolute URI (`https://host[:port]`, any path ignored) and takes its
    /// origin. Refuses user information (`user:password@`), which has no place in an origin.
    pub(crate) fn parse(text: &str) -> Result<Self, &'static str> {
        let uri: Uri = text
            .trim()
            .parse()
            .map_err(|_| "it is not a valid absolute URI")?;
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err("it contains user information (`user:password@`)");
        }
        if uri.scheme().is_none() {
            return Err("it has no scheme: write `https://host[:port]`");
        }
        Self::of(&uri).ok_or("it needs a host, and a port unless the scheme is http or https")
    }

    /// The lower-case scheme.
    pub(crate) fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The lower-case host (IPv6 addresses in brackets).
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// The port, explicit or the scheme's default.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Whether this is `https`.
    pub(crate) fn is_https(&self) -> bool {
        &*self.scheme == "https"
    }

    /// Whether `uri` (absolute) has this origin, without allocating (the routed layer asks
    /// for every request).
    pub(crate) fn is_origin_of(&self, uri: &Uri) -> bool {
        let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case(&self.scheme) {
            return false;
        }
        let port = match uri.port_u16() {
            Some(port) => port,
            None => match default_port(&self.scheme) {
                Some(port) => port,
                None => return false,
            },
        };
        port == self.port
            && (host.eq_ignore_ascii_case(&self.host)
                // An IPv6 address written another way (`[0:0::1]`).
                || (host.starts_with('[') && normalize_host(host) == *self.host))
    }

    /// Whether `uri` (absolute) has this origin.
    pub(crate) fn matches(&self, uri: &Uri) -> bool {
        Self::of(uri).is_some_and(|other| other == *self)
    }
}

impl fmt::Display for Origin {
    /// `scheme://host:port`, always with the port, sanitised for logs and error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}:{}",
            crate::error::sanitize(&self.scheme),
            crate::error::sanitize(&self.host),
            self.port
        )
    }
}

/// A host in lower case; an IP address in its canonical text (so `[0:0::1]` and `[::1]`, as a
/// URL parser rewrites it, are the same host).
fn normalize_host(host: &str) -> String {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    match bare.map(str::parse::<std::net::Ipv6Addr>) {
        Some(Ok(v6)) => format!("[{v6}]"),
        _ => host.to_ascii_lowercase(),
    }
}

/// The default port of `scheme` (lower case): 443 for `https`, 80 for `http`.
pub(crate) fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    }
}

/// Where a redirect's `Location` points, judged without resolving names.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LocationTarget {
    /// Provably the request's own origin: an absolute path (`/next`), or an absolute URI with
    /// the same scheme, host and port.
    SameOrigin,
    /// Another origin, shown as `scheme://host:port` (never the path or query, which can carry
    /// a presigned secret).
    Other(Origin),
    /// Not provably the same origin and not an origin either: a relative path such as `next`
    /// or `?q`, a scheme-relative `//host`, something that is not a URI. Treated as another
    /// origin (fail closed).
    Unknown,
}

/// Judges a `Location` value against the origin of the request it answered.
///
/// Fail closed: only an absolute path (starting with one `/`, no backslash anywhere, since
/// some resolvers read `\` as `/`) or an absolute URI with exactly `origin` counts as
/// same-origin. User information in the URI makes it `Unknown`.
pub(crate) fn judge_location(location: &[u8], origin: &Origin) -> LocationTarget {
    if is_absolute_path(location) {
        return LocationTarget::SameOrigin;
    }
    let Ok(location) = std::str::from_utf8(location) else {
        return LocationTarget::Unknown;
    };
    if !is_plain(location.as_bytes()) || location.starts_with('/') {
        return LocationTarget::Unknown;
    }
    match Origin::parse(location) {
        Ok(target) if &target == origin => LocationTarget::SameOrigin,
        Ok(target) => LocationTarget::Other(target),
        Err(_) => LocationTarget::Unknown,
    }
}

/// Whether `location` is an absolute path (`/next`, not `//host`), which stays on the origin
/// it is resolved against. Any backslash (some resolvers read it as `/`), control character
/// (URL parsers drop tabs and newlines, so `/\t/host` becomes `//host`), space or non-ASCII
/// byte makes it not one.
pub(crate) fn is_absolute_path(location: &[u8]) -> bool {
    match location {
        [b'/', b'/', ..] => false,
        [b'/', ..] => is_plain(location),
        _ => false,
    }
}

/// Printable ASCII without space or backslash.
fn is_plain(text: &[u8]) -> bool {
    text.iter().all(|&b| b.is_ascii_graphic() && b != b'\\')
}

/// `localhost`, `127.0.0.0/8` and `::1` (also as an IPv4-mapped address).
///
/// Judged by name, so only names every resolver maps to loopback count: not `*.localhost`,
/// nor names with a trailing dot, which a resolver may send to DNS.
pub(crate) fn is_loopback(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(uri: &str) -> Origin {
        Origin::of(&uri.parse().unwrap()).unwrap()
    }

    #[test]
    fn origins_normalise_scheme_host_case_and_default_port() {
        assert_eq!(
            origin("https://API.Example.com/x"),
            origin("https://api.example.com:443/y")
        );
        assert_eq!(origin("HTTP://localhost/"), origin("http://localhost:80"));
        assert_ne!(origin("https://a.example/"), origin("http://a.example/"));
        assert_ne!(
            origin("https://a.example/"),
            origin("https://a.example:8443/")
        );
        assert_ne!(origin("https://a.example/"), origin("https://a.example./"));
        assert_eq!(origin("https://[::1]:8443/").host(), "[::1]");
        assert_eq!(
            origin("https://[0:0::1]:8443/"),
            origin("https://[::1]:8443/")
        );
        assert_eq!(
            origin("https://[::FFFF:127.0.0.1]/").host(),
            "[::ffff:127.0.0.1]"
        );
        assert!(Origin::of(&"/package.Service/Method".parse().unwrap()).is_none());
        assert!(Origin::of(&"ftp://files.example/".parse().unwrap()).is_none());
        assert_eq!(origin("ftp://files.example:21/").port(), 21);
        assert_eq!(
            origin("https://a.example/").to_string(),
            "https://a.example:443"
        );
    }

    #[test]
    fn matches_compares_all_three_parts() {
        let o = origin("https://api.example.com");
        assert!(o.matches(&"https://API.example.com:443/v1".parse().unwrap()));
        assert!(!o.matches(&"https://api.example.com:8443/v1".parse().unwrap()));
        assert!(!o.matches(&"http://api.example.com/v1".parse().unwrap()));
        assert!(!o.matches(&"/v1".parse().unwrap()));
    }

    #[test]
    fn is_origin_of_agrees_with_matches() {
        let origins = [
            "https://api.example.com",
            "http://api.example.com",
            "https://api.example.com:8443",
            "http://127.0.0.1:8080",
            "http://[::1]:8080",
            "https://xn--bcher-kva.example",
        ];
        let uris = [
            "https://api.example.com/v1",
            "HTTPS://API.Example.COM:443/v1",
            "https://api.example.com:8443/",
            "http://api.example.com:80/",
            "http://api.example.com:443/",
            "https://api.example.com.:443/",
            "http://127.0.0.1:8080/x",
            "http://127.0.0.1/x",
            "http://[0:0::1]:8080/x",
            "http://[::1]:8080/x",
            "https://XN--BCHER-KVA.example/",
            "ftp://api.example.com/",
            "/v1",
        ];
        for o in origins {
            let o = origin(o);
            for uri in uris {
                let uri: Uri = uri.parse().unwrap();
                assert_eq!(o.is_origin_of(&uri), o.matches(&uri), "{o} {uri}");
            }
        }
    }

    #[test]
    fn parse_refuses_userinfo_and_relative_uris() {
        assert!(Origin::parse("https://user:pw@api.example").is_err());
        assert!(Origin::parse("api.example:443").is_err());
        assert!(Origin::parse("/path").is_err());
        assert!(Origin::parse("not a uri").is_err());
        assert_eq!(
            Origin::parse(" https://api.example:8443/ ").unwrap().port(),
            8443
        );
    }

    #[test]
    fn only_absolute_paths_and_equal_origins_are_same_origin() {
        let o = origin("https://api.example.com");
        for same in [
            "/next",
            "/",
            "/a?b=c",
            "https://api.example.com/x",
            "https://API.EXAMPLE.COM:443/x?sig=abc",
        ] {
            assert_eq!(
                judge_location(same.as_bytes(), &o),
                LocationTarget::SameOrigin,
                "{same}"
            );
        }
        for other in [
            "https://api.example.com:8443/x",
            "http://api.example.com/x",
            "https://evil.example/x",
            "https://api.example.com./x",
        ] {
            assert!(
                matches!(
                    judge_location(other.as_bytes(), &o),
                    LocationTarget::Other(_)
                ),
                "{other}"
            );
        }
        for unknown in [
            "//evil.example/x",
            "/\t/evil.example/x",
            "/\n/evil.example/x",
            "/ /evil.example/x",
            "/\u{ff0f}evil.example",
            "/\\evil.example/x",
            "\\\\evil.example",
            "next",
            "?q=1",
            "https://user@api.example.com/x",
            "https://api.example.com/ x",
            "",
        ] {
            assert_eq!(
                judge_location(unknown.as_bytes(), &o),
                LocationTarget::Unknown,
                "{unknown}"
            );
        }
        assert_eq!(judge_location(b"/\xff", &o), LocationTarget::Unknown);
    }

    #[test]
    fn loopback_is_judged_by_name_and_address() {
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.8.9.10",
            "[::1]",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "localhost.example.com",
            "api.localhost",
            "localhost.",
            "10.0.0.1",
            "[::2]",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
