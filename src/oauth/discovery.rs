//! Finding the token endpoint from the issuer: authorization server metadata (RFC 8414) or
//! OpenID Connect Discovery, sans-IO. [`metadata_urls`] says where to ask, [`parse_metadata`]
//! reads and checks the answer; the fetch itself is the flow's, at its first token request,
//! through its transport (see [`Generic::issuer`](crate::providers::Generic::issuer)).
//!
//! ```
//! use http::StatusCode;
//! use tower_bearer::oauth::discovery::{metadata_urls, parse_metadata};
//!
//! let urls = metadata_urls("https://login.partner.example/tenant-7").unwrap();
//! assert_eq!(urls[0], "https://login.partner.example/.well-known/oauth-authorization-server/tenant-7");
//! assert_eq!(urls[1], "https://login.partner.example/tenant-7/.well-known/openid-configuration");
//!
//! let metadata = parse_metadata(
//!     "https://login.partner.example/tenant-7",
//!     StatusCode::OK,
//!     br#"{"issuer":"https://login.partner.example/tenant-7",
//!          "token_endpoint":"https://login.partner.example/tenant-7/oauth2/token",
//!          "token_endpoint_auth_methods_supported":["client_secret_post","private_key_jwt"]}"#,
//!     false,
//! ).unwrap();
//! assert_eq!(metadata.token_endpoint(), "https://login.partner.example/tenant-7/oauth2/token");
//! assert!(!metadata.supports("client_secret_basic"));
//! ```

use http::{StatusCode, Uri};
use serde::Deserialize;

use crate::error::{TokenError, TokenErrorKind, sanitize};
use crate::oauth::request::{ClientCredentialsRequest, check_no_userinfo};

/// The RFC 8414 well-known suffix.
const OAUTH_WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";
/// The OpenID Connect Discovery 1.0 well-known suffix.
const OPENID_WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// What this crate uses of an authorization server's metadata: the issuer it names, its token
/// endpoint and the client authentication methods that endpoint accepts.
///
/// ```
/// # use http::StatusCode;
/// # use tower_bearer::oauth::discovery::parse_metadata;
/// # let metadata = parse_metadata(
/// #     "https://login.example",
/// #     StatusCode::OK,
/// #     br#"{"issuer":"https://login.example","token_endpoint":"https://login.example/token",
/// #          "token_endpoint_auth_methods_supported":["client_secret_post","private_key_jwt"]}"#,
/// #     false,
/// # ).unwrap();
/// // The server at https://login.example lists `client_secret_post` and `private_key_jwt`.
/// assert_eq!(metadata.issuer(), "https://login.example");
/// assert_eq!(metadata.token_endpoint(), "https://login.example/token");
/// assert!(metadata.supports("private_key_jwt"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    issuer: String,
    token_endpoint: String,
    auth_methods: Option<Vec<String>>,
}

impl Metadata {
    /// The `issuer`: equal to the configured one ([`parse_metadata`] checks).
    ///
    /// ```
    /// # use http::StatusCode;
    /// # use tower_bearer::oauth::discovery::parse_metadata;
    /// # let metadata = parse_metadata(
    /// #     "https://login.example",
    /// #     StatusCode::OK,
    /// #     br#"{"issuer":"https://login.example","token_endpoint":"https://login.example/token",
    /// #          "token_endpoint_auth_methods_supported":["client_secret_post","private_key_jwt"]}"#,
    /// #     false,
    /// # ).unwrap();
    /// assert_eq!(metadata.issuer(), "https://login.example");
    /// ```
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `token_endpoint`: an `https://` URL (or `http://` to a loopback host, or anywhere
    /// if insecure http was allowed).
    ///
    /// ```
    /// # use http::StatusCode;
    /// # use tower_bearer::oauth::discovery::parse_metadata;
    /// # let metadata = parse_metadata(
    /// #     "https://login.example",
    /// #     StatusCode::OK,
    /// #     br#"{"issuer":"https://login.example","token_endpoint":"https://login.example/token",
    /// #          "token_endpoint_auth_methods_supported":["client_secret_post","private_key_jwt"]}"#,
    /// #     false,
    /// # ).unwrap();
    /// assert_eq!(metadata.token_endpoint(), "https://login.example/token");
    /// ```
    pub fn token_endpoint(&self) -> &str {
        &self.token_endpoint
    }

    /// `token_endpoint_auth_methods_supported`, if the metadata lists it.
    ///
    /// ```
    /// # use http::StatusCode;
    /// # use tower_bearer::oauth::discovery::parse_metadata;
    /// # let metadata = parse_metadata(
    /// #     "https://login.example",
    /// #     StatusCode::OK,
    /// #     br#"{"issuer":"https://login.example","token_endpoint":"https://login.example/token",
    /// #          "token_endpoint_auth_methods_supported":["client_secret_post","private_key_jwt"]}"#,
    /// #     false,
    /// # ).unwrap();
    /// assert_eq!(metadata.auth_methods().unwrap(), ["client_secret_post", "private_key_jwt"]);
    /// ```
    pub fn auth_methods(&self) -> Option<&[String]> {
        self.auth_methods.as_deref()
    }

    /// Whether the token endpoint accepts `method` (`client_secret_basic`, ...). Without a
    /// list, RFC 8414 §2 says the endpoint accepts `client_secret_basic`.
    ///
    /// ```
    /// use http::StatusCode;
    /// use tower_bearer::oauth::discovery::parse_metadata;
    ///
    /// // No `token_endpoint_auth_methods_supported`: only the RFC 8414 default.
    /// let body = br#"{"issuer":"https://as.example","token_endpoint":"https://as.example/token"}"#;
    /// let metadata = parse_metadata("https://as.example", StatusCode::OK, body, false).unwrap();
    /// assert!(metadata.supports("client_secret_basic"));
    /// assert!(!metadata.supports("client_secret_post"));
    /// ```
    pub fn supports(&self, method: &str) -> bool {
        match &self.auth_methods {
            Some(methods) => methods.iter().any(|m| m == method),
            None => method == "client_secret_basic",
        }
    }
}

/// Checks an issuer identifier (RFC 8414 §2): an absolute `https://` URL (or `http://` to a
/// loopback host, or anywhere with `allow_insecure_http`), without user information, query
/// or fragment. The error says what to fix.
pub(crate) fn check_issuer(issuer: &str, allow_insecure_http: bool) -> Result<Uri, TokenError> {
    check_no_userinfo(issuer)?;
    if issuer.contains(['?', '#']) {
        return Err(TokenError::configuration(
            format!(
                "the issuer `{}` has a query or fragment, which RFC 8414 §2 does not allow",
                sanitize(issuer)
            ),
            "give the issuer identifier exactly as the server's metadata names it (scheme, \
             host and path only)",
        ));
    }
    // The same scheme and host rules as a token URL.
    let request = if allow_insecure_http {
        ClientCredentialsRequest::new_allow_insecure_http(issuer)
    } else {
        ClientCredentialsRequest::new(issuer)
    }
    .map_err(|e| {
        let hint = match e.hint() {
            // The plain-http and user-information hints hold for an issuer as they are.
            Some(hint) if hint.contains("http") && !hint.contains("e.g.") => hint.to_owned(),
            _ => String::from(
                "give the issuer's full URL (scheme, host and path), e.g. \
                 https://login.partner.example/tenant",
            ),
        };
        TokenError::configuration(e.message().replace("token URL", "issuer"), hint)
    })?;
    Ok(request.token_url().clone())
}

/// Where an issuer's metadata is, in the order to ask: the RFC 8414 §3.1 URL (the well-known
/// suffix inserted between the host and the issuer's path), then the OpenID Connect
/// Discovery URL (the suffix appended to the issuer). Fails for an issuer that is not a
/// usable URL (see [`Generic::issuer`](crate::providers::Generic::issuer)).
///
/// ```
/// use tower_bearer::oauth::discovery::metadata_urls;
///
/// let [rfc8414, openid] = metadata_urls("https://as.example/").unwrap();
/// assert_eq!(rfc8414, "https://as.example/.well-known/oauth-authorization-server");
/// assert_eq!(openid, "https://as.example/.well-known/openid-configuration");
/// assert!(metadata_urls("https://as.example/?tenant=1").is_err(), "no query in an issuer");
/// ```
pub fn metadata_urls(issuer: &str) -> Result<[String; 2], TokenError> {
    let uri = check_issuer(issuer, true)?;
    Ok(well_known(&uri))
}

pub(crate) fn well_known(issuer: &Uri) -> [String; 2] {
    let scheme = issuer.scheme_str().unwrap_or("https");
    let authority = issuer.authority().map_or("", |a| a.as_str());
    // RFC 8414 §3.1: a terminating `/` of the issuer is removed before the insertion.
    let path = issuer.path().trim_end_matches('/');
    [
        format!("{scheme}://{authority}{OAUTH_WELL_KNOWN}{path}"),
        format!("{scheme}://{authority}{path}{OPENID_WELL_KNOWN}"),
    ]
}

#[derive(Deserialize)]
struct RawMetadata {
    issuer: Option<serde_json::Value>,
    token_endpoint: Option<serde_json::Value>,
    token_endpoint_auth_methods_supported: Option<serde_json::Value>,
}

/// Reads the metadata `issuer`'s server answered with: a `200` with a JSON object whose
/// `issuer` is exactly the configured one (RFC 8414 §3.3: otherwise the metadata must not be
/// used) and whose `token_endpoint` is a usable token URL (`https://`, or `http://` to a
/// loopback host, or anywhere with `allow_insecure_http`). A pure function.
///
/// Errors, each saying what to fix: a non-`200` status
/// ([`Unavailable`](TokenErrorKind::Unavailable) for `5xx`,
/// [`RateLimited`](TokenErrorKind::RateLimited) for `429`,
/// [`Configuration`](TokenErrorKind::Configuration) otherwise), an answer that is not such an
/// object ([`MalformedAnswer`](TokenErrorKind::MalformedAnswer)), another issuer or an unusable
/// token endpoint ([`Configuration`](TokenErrorKind::Configuration)). What the server wrote is
/// shown sanitised and cut short.
///
/// ```
/// use http::StatusCode;
/// use tower_bearer::oauth::discovery::parse_metadata;
///
/// // Metadata naming another issuer must not be used (RFC 8414 §3.3).
/// let body = br#"{"issuer":"https://evil.example","token_endpoint":"https://evil.example/token"}"#;
/// let err = parse_metadata("https://as.example", StatusCode::OK, body, false).unwrap_err();
/// assert!(err.to_string().contains("issuer"), "{err}");
/// assert!(parse_metadata("https://as.example", StatusCode::NOT_FOUND, b"", false).is_err());
/// ```
pub fn parse_metadata(
    issuer: &str,
    status: StatusCode,
    body: &[u8],
    allow_insecure_http: bool,
) -> Result<Metadata, TokenError> {
    if status != StatusCode::OK {
        let (kind, hint) = match status.as_u16() {
            429 => (
                TokenErrorKind::RateLimited,
                "the authorization server limits requests; it is asked again after a backoff",
            ),
            500..=599 => (
                TokenErrorKind::Unavailable,
                "the authorization server is failing; it is asked again after a backoff",
            ),
            _ => (
                TokenErrorKind::Configuration,
                "check the issuer (it must be the server's issuer identifier), or set the token \
                 URL instead of the issuer",
            ),
        };
        return Err(TokenError::new(
            kind,
            format!("the issuer's metadata was answered with status {status}"),
        )
        .with_status(status)
        .with_hint(hint));
    }
    let malformed = |what: &str| {
        TokenError::new(
            TokenErrorKind::MalformedAnswer,
            format!("the issuer's metadata {what}"),
        )
        .with_status(status)
        .with_hint(
            "check that the issuer is the authorization server's issuer identifier (its \
             metadata is a JSON object)",
        )
    };
    let raw: RawMetadata =
        serde_json::from_slice(body).map_err(|_| malformed("is not a JSON object"))?;
    let string = |value: Option<serde_json::Value>, field: &str| match value {
        Some(serde_json::Value::String(s)) => Ok(s),
        Some(_) => Err(malformed(&format!("has a `{field}` that is not a string"))),
        None => Err(malformed(&format!("has no `{field}`"))),
    };
    let found = string(raw.issuer, "issuer")?;
    if found != issuer {
        return Err(TokenError::configuration(
            format!(
                "the issuer's metadata names the issuer `{}`, not `{}` (RFC 8414 §3.3: the \
                 metadata is not used)",
                sanitize(&found),
                sanitize(issuer)
            ),
            "set the issuer to exactly the server's issuer identifier (mind a trailing `/`)",
        ));
    }
    let token_endpoint = string(raw.token_endpoint, "token_endpoint")?;
    let checked = if allow_insecure_http {
        ClientCredentialsRequest::new_allow_insecure_http(&token_endpoint)
    } else {
        ClientCredentialsRequest::new(&token_endpoint)
    };
    if let Err(e) = checked {
        return Err(TokenError::configuration(
            format!(
                "the issuer's metadata names a token endpoint that cannot be used: {}",
                e.message()
            ),
            "the authorization server's metadata must name an https:// token endpoint; if \
             this is a trusted network, allow insecure http, or set the token URL instead",
        ));
    }
    let auth_methods = match raw.token_endpoint_auth_methods_supported {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Array(methods)) => Some(
            methods
                .into_iter()
                .map(|m| match m {
                    serde_json::Value::String(m) => Ok(m),
                    _ => Err(malformed(
                        "has a `token_endpoint_auth_methods_supported` that is not a list of \
                         strings",
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => {
            return Err(malformed(
                "has a `token_endpoint_auth_methods_supported` that is not a list of strings",
            ));
        }
    };
    Ok(Metadata {
        issuer: found,
        token_endpoint,
        auth_methods,
    })
}

/// Whether the metadata at the first URL was absent, so the next one is worth asking: any
/// client error but `429` (a `404`, a `405`, a redirect answered as `3xx`).
pub(crate) fn try_next(error: &TokenError) -> bool {
    error.status().is_some_and(|s| {
        (s.is_client_error() && s != StatusCode::TOO_MANY_REQUESTS) || s.is_redirection()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://as.example/tenant";

    fn metadata(json: &str) -> Result<Metadata, TokenError> {
        parse_metadata(ISSUER, StatusCode::OK, json.as_bytes(), false)
    }

    #[test]
    fn well_known_urls_insert_the_suffix_before_the_path_and_append_the_openid_one() {
        let urls = |issuer: &str| metadata_urls(issuer).unwrap();
        assert_eq!(
            urls("https://as.example"),
            [
                "https://as.example/.well-known/oauth-authorization-server",
                "https://as.example/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            urls("https://as.example/"),
            [
                "https://as.example/.well-known/oauth-authorization-server",
                "https://as.example/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            urls("https://as.example:8443/a/b/"),
            [
                "https://as.example:8443/.well-known/oauth-authorization-server/a/b",
                "https://as.example:8443/a/b/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            urls("http://127.0.0.1:9000/t")[0],
            "http://127.0.0.1:9000/.well-known/oauth-authorization-server/t"
        );
    }

    #[test]
    fn issuers_with_query_fragment_userinfo_or_plain_http_are_refused() {
        for (issuer, says) in [
            ("https://as.example/t?x=1", "query or fragment"),
            ("https://as.example/t#f", "query or fragment"),
            ("https://user:pw@as.example/t", "user information"),
            ("as.example/t", "not a valid URL"),
            ("https://as.example:99999/t", "port"),
        ] {
            let err = metadata_urls(issuer).unwrap_err();
            assert_eq!(err.kind(), TokenErrorKind::Configuration, "{issuer}");
            assert!(err.to_string().contains(says), "{issuer}: {err}");
            assert!(!err.to_string().contains("pw"), "{err}");
        }
        let err = check_issuer("http://as.example/t", false).unwrap_err();
        assert!(err.message().contains("plain http://"), "{err}");
        assert!(check_issuer("http://as.example/t", true).is_ok());
        assert!(check_issuer("http://localhost:8080/t", false).is_ok());
    }

    #[test]
    fn metadata_is_read_with_its_auth_methods() {
        let m = metadata(
            r#"{"issuer":"https://as.example/tenant","token_endpoint":"https://as.example/tenant/token",
                "token_endpoint_auth_methods_supported":["client_secret_post","private_key_jwt"],
                "jwks_uri":"https://as.example/keys","grant_types_supported":["client_credentials"]}"#,
        )
        .unwrap();
        assert_eq!(m.issuer(), ISSUER);
        assert_eq!(m.token_endpoint(), "https://as.example/tenant/token");
        assert!(m.supports("client_secret_post") && m.supports("private_key_jwt"));
        assert!(!m.supports("client_secret_basic"));
        // Without a list, only client_secret_basic (RFC 8414 §2's default).
        let m = metadata(
            r#"{"issuer":"https://as.example/tenant","token_endpoint":"https://as.example/t"}"#,
        )
        .unwrap();
        assert_eq!(m.auth_methods(), None);
        assert!(m.supports("client_secret_basic") && !m.supports("client_secret_post"));
    }

    #[test]
    fn another_issuer_is_refused_naming_both() {
        for other in [
            "https://as.example/tenant/",
            "https://evil.example/tenant",
            "https://AS.example/tenant",
        ] {
            let err = metadata(&format!(
                r#"{{"issuer":"{other}","token_endpoint":"https://as.example/t"}}"#
            ))
            .unwrap_err();
            assert_eq!(err.kind(), TokenErrorKind::Configuration);
            assert!(err.message().contains(other), "{err}");
            assert!(err.message().contains("§3.3"), "{err}");
            assert!(err.hint().unwrap().contains("exactly"), "{err}");
        }
    }

    #[test]
    fn a_token_endpoint_over_plain_http_is_refused_unless_allowed() {
        let json =
            r#"{"issuer":"https://as.example/tenant","token_endpoint":"http://as.example/t"}"#;
        let err = metadata(json).unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::Configuration);
        assert!(err.message().contains("plain http://"), "{err}");
        assert!(err.hint().unwrap().contains("allow insecure http"), "{err}");
        assert!(parse_metadata(ISSUER, StatusCode::OK, json.as_bytes(), true).is_ok());
        let json =
            r#"{"issuer":"https://as.example/tenant","token_endpoint":"https://u:p@as.example/t"}"#;
        let err = metadata(json).unwrap_err();
        assert!(!err.to_string().contains("u:p"), "{err}");
    }

    #[test]
    fn malformed_metadata_and_error_statuses_are_typed() {
        for (json, says) in [
            ("", "not a JSON object"),
            ("[1]", "not a JSON object"),
            ("<html>", "not a JSON object"),
            (
                r#"{"token_endpoint":"https://as.example/t"}"#,
                "no `issuer`",
            ),
            (
                r#"{"issuer":7,"token_endpoint":"https://as.example/t"}"#,
                "`issuer` that is not",
            ),
            (
                r#"{"issuer":"https://as.example/tenant"}"#,
                "no `token_endpoint`",
            ),
            (
                r#"{"issuer":"https://as.example/tenant","token_endpoint":"https://as.example/t","token_endpoint_auth_methods_supported":"client_secret_post"}"#,
                "not a list",
            ),
            (
                r#"{"issuer":"https://as.example/tenant","token_endpoint":"https://as.example/t","token_endpoint_auth_methods_supported":[1]}"#,
                "not a list",
            ),
        ] {
            let err = metadata(json).unwrap_err();
            assert_eq!(err.kind(), TokenErrorKind::MalformedAnswer, "{json}");
            assert!(err.message().contains(says), "{json}: {err}");
        }
        for (status, kind) in [
            (StatusCode::NOT_FOUND, TokenErrorKind::Configuration),
            (StatusCode::TOO_MANY_REQUESTS, TokenErrorKind::RateLimited),
            (StatusCode::BAD_GATEWAY, TokenErrorKind::Unavailable),
        ] {
            let err = parse_metadata(ISSUER, status, b"{}", false).unwrap_err();
            assert_eq!((err.kind(), err.status()), (kind, Some(status)));
        }
        assert!(try_next(
            &parse_metadata(ISSUER, StatusCode::NOT_FOUND, b"", false).unwrap_err()
        ));
        assert!(!try_next(
            &parse_metadata(ISSUER, StatusCode::BAD_GATEWAY, b"", false).unwrap_err()
        ));
    }
}
