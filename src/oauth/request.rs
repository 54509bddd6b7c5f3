//! Building a client-credentials token request (RFC 6749 §4.4), as a pure function.
//!
//! ```
//! use tower_bearer::oauth::{ClientAuth, ClientCredentialsRequest};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let request = ClientCredentialsRequest::new("https://idp.example/token").unwrap().scope("api.read");
//! let auth = ClientAuth::client_secret_post("client-7", "s3cret");
//! let http = request.http_request(&auth.credentials(request.token_url()).await.unwrap()).unwrap();
//! assert_eq!(http.method(), "POST");
//! assert_eq!(http.headers()["content-type"], "application/x-www-form-urlencoded");
//! assert_eq!(http.body(), b"grant_type=client_credentials&scope=api.read&client_id=client-7&client_secret=s3cret");
//! # }
//! ```

use std::fmt;

use http::header::{ACCEPT, CONTENT_TYPE};
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderValue, Method, Request, Uri};
use zeroize::Zeroizing;

use crate::error::TokenError;
use crate::oauth::client_auth::{ClientAuth, Credentials};
use crate::origin::is_loopback;

/// Where `grant_type=client_credentials` travels.
///
/// ```
/// use tower_bearer::oauth::{ClientCredentialsRequest, GrantTypeIn};
///
/// assert_eq!(GrantTypeIn::default(), GrantTypeIn::Body);
/// // A token URL whose query has it already sends it there.
/// let url = "https://api.example/token?grant_type=client_credentials";
/// let request = ClientCredentialsRequest::new(url).unwrap();
/// assert!(format!("{request:?}").contains("grant_type_in: Query"));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GrantTypeIn {
    /// In the form body, as RFC 6749 says. The default.
    #[default]
    Body,
    /// In the token URL's query string, as Apigee-based endpoints (KPN API Store) expect.
    Query,
}

/// Parameters this crate sets itself; [`ClientCredentialsRequest::param`] may not override them.
const RESERVED: [&str; 8] = [
    "grant_type",
    "scope",
    "resource",
    "audience",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
];

/// A client-credentials token request: where to send it and what to ask for.
///
/// Sending it takes two steps: [`ClientAuth::credentials`] makes the credentials of one
/// request (async: an assertion hook is awaited), then [`http_request`](Self::http_request)
/// builds the HTTP request from them, a pure function.
///
/// ```
/// use tower_bearer::oauth::{ClientAuth, ClientCredentialsRequest, GrantTypeIn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let request = ClientCredentialsRequest::new("https://api-prd.kpn.com/oauth/client_credential/accesstoken")
///     .unwrap()
///     .grant_type_in(GrantTypeIn::Query);
/// let auth = ClientAuth::client_secret_post("id", "secret");
/// let credentials = auth.credentials(request.token_url()).await.unwrap();
/// let http = request.http_request(&credentials).unwrap();
/// assert_eq!(http.uri().query(), Some("grant_type=client_credentials"));
/// assert_eq!(http.body(), b"client_id=id&client_secret=secret");
/// # }
/// ```
#[derive(Clone)]
pub struct ClientCredentialsRequest {
    /// The token URL as given.
    token_url: Uri,
    /// Whether the token URL's own query has `grant_type` (read once, at construction).
    url_has_grant_type: bool,
    /// Where the request goes: the token URL, with `grant_type=client_credentials` appended to
    /// its query if it travels there and the URL lacks it. `None` if that could not be formed.
    send_to: Option<Uri>,
    grant_type_in: GrantTypeIn,
    scopes: Vec<String>,
    resources: Vec<String>,
    audience: Option<String>,
    params: Vec<(String, String)>,
}

impl ClientCredentialsRequest {
    /// A request to `token_url`, which must be an absolute `https://` URL (or `http://` to a
    /// loopback host). Its own query string is kept.
    ///
    /// ```
    /// use tower_bearer::oauth::ClientCredentialsRequest;
    ///
    /// assert!(ClientCredentialsRequest::new("https://idp.example/oauth2/token").is_ok());
    /// assert!(ClientCredentialsRequest::new("http://127.0.0.1:8080/token").is_ok(), "loopback");
    /// let err = ClientCredentialsRequest::new("http://idp.example/token").unwrap_err();
    /// assert!(err.hint().unwrap().contains("use https://"));
    /// ```
    pub fn new(token_url: &str) -> Result<Self, TokenError> {
        Self::with_url(token_url, false)
    }

    /// Like [`new`](Self::new), but also accepts plain `http://` to any host. Only for networks
    /// you trust: the client secret travels in clear text.
    ///
    /// ```
    /// use tower_bearer::oauth::ClientCredentialsRequest;
    ///
    /// // A token endpoint on a trusted private network, without TLS.
    /// let request = ClientCredentialsRequest::new_allow_insecure_http("http://idp.internal/token");
    /// assert_eq!(request.unwrap().token_url(), "http://idp.internal/token");
    /// ```
    pub fn new_allow_insecure_http(token_url: &str) -> Result<Self, TokenError> {
        Self::with_url(token_url, true)
    }

    fn with_url(token_url: &str, allow_insecure_http: bool) -> Result<Self, TokenError> {
        let config = |message: String, hint: &'static str| TokenError::configuration(message, hint);
        check_no_userinfo(token_url)?;
        let uri: Uri = token_url.trim().parse().map_err(|_| {
            config(
                format!("the token URL {} is not a valid URL", shown_url(token_url)),
                "give the token endpoint's full URL, e.g. https://login.example.com/tenant/oauth2/v2.0/token",
            )
        })?;
        let (Some(scheme), Some(host)) = (uri.scheme(), uri.host()) else {
            return Err(config(
                format!("the token URL {} is not absolute", shown_url(token_url)),
                "include the scheme and host: https://host/path",
            ));
        };
        let authority = uri.authority().map_or("", |a| a.as_str());
        let after_host = authority
            .rsplit_once(']')
            .map_or(authority, |(_, rest)| rest);
        if after_host
            .rsplit_once(':')
            .is_some_and(|(_, port)| !port.is_empty() && port.parse::<u16>().is_err())
        {
            return Err(config(
                format!(
                    "the token URL for `{}` has a port that is not a number from 0 to 65535",
                    crate::error::sanitize(host)
                ),
                "write the port as digits (https://host:8443/path), or leave it out",
            ));
        }
        let https = *scheme == Scheme::HTTPS;
        if !https && *scheme != Scheme::HTTP {
            return Err(config(
                format!(
                    "the token URL's scheme `{}` is not http(s)",
                    crate::error::sanitize(scheme.as_str())
                ),
                "use an https:// token URL",
            ));
        }
        if !https && !allow_insecure_http && !is_loopback(host) {
            return Err(config(
                format!(
                    "the token URL is plain http:// to `{}`, a host that is not loopback",
                    crate::error::sanitize(host)
                ),
                "use https:// (the client secret would travel in clear text), or allow insecure \
                 http explicitly for a trusted network",
            ));
        }
        let grant_type_in = match query_grant_type(&uri) {
            Some(value) if value == "client_credentials" => GrantTypeIn::Query,
            Some(value) => {
                return Err(config(
                    format!(
                        "the token URL's query has grant_type={}, not client_credentials",
                        crate::error::sanitize(&value)
                    ),
                    "remove grant_type from the token URL",
                ));
            }
            None => GrantTypeIn::Body,
        };
        Ok(Self {
            send_to: Some(uri.clone()),
            token_url: uri,
            url_has_grant_type: grant_type_in == GrantTypeIn::Query,
            grant_type_in,
            scopes: Vec::new(),
            resources: Vec::new(),
            audience: None,
            params: Vec::new(),
        })
    }

    /// The same request to another token URL (one found by discovery), checked by the same
    /// rules; `grant_type` travels in the query if it did here or the new URL has it.
    pub(crate) fn at(
        &self,
        token_url: &str,
        allow_insecure_http: bool,
    ) -> Result<Self, TokenError> {
        let mut moved = Self::with_url(token_url, allow_insecure_http)?;
        if self.grant_type_in == GrantTypeIn::Query {
            moved = moved.grant_type_in(GrantTypeIn::Query);
        }
        moved.scopes = self.scopes.clone();
        moved.resources = self.resources.clone();
        moved.audience = self.audience.clone();
        moved.params = self.params.clone();
        Ok(moved)
    }

    /// Where `grant_type` travels. Default: the body, unless the token URL's query already has
    /// it.
    ///
    /// ```
    /// use tower_bearer::oauth::{ClientCredentialsRequest, GrantTypeIn};
    ///
    /// # use tower_bearer::oauth::ClientAuth;
    /// # async fn form(request: &ClientCredentialsRequest) -> String {
    /// #     let auth = ClientAuth::client_secret_basic("id", "secret");
    /// #     let credentials = auth.credentials(request.token_url()).await.unwrap();
    /// #     String::from_utf8(request.http_request(&credentials).unwrap().into_body()).unwrap()
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let request = ClientCredentialsRequest::new("https://api.example/token").unwrap()
    ///     .grant_type_in(GrantTypeIn::Query);
    /// assert_eq!(form(&request).await, "", "the body is left with the credentials only");
    /// let auth = ClientAuth::client_secret_basic("id", "secret");
    /// let http = request.http_request(&auth.credentials(request.token_url()).await.unwrap()).unwrap();
    /// assert_eq!(http.uri().query(), Some("grant_type=client_credentials"));
    /// # }
    /// ```
    pub fn grant_type_in(mut self, place: GrantTypeIn) -> Self {
        self.grant_type_in = place;
        self.send_to = match place {
            GrantTypeIn::Query if !self.url_has_grant_type => {
                with_query_grant_type(&self.token_url)
            }
            _ => Some(self.token_url.clone()),
        };
        self
    }

    /// Asks for a scope; a string with spaces is several scopes. Sent space-joined.
    ///
    /// ```
    /// use tower_bearer::oauth::ClientCredentialsRequest;
    ///
    /// # use tower_bearer::oauth::ClientAuth;
    /// # async fn form(request: &ClientCredentialsRequest) -> String {
    /// #     let auth = ClientAuth::client_secret_basic("id", "secret");
    /// #     let credentials = auth.credentials(request.token_url()).await.unwrap();
    /// #     String::from_utf8(request.http_request(&credentials).unwrap().into_body()).unwrap()
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let request = ClientCredentialsRequest::new("https://idp.example/token").unwrap()
    ///     .scope("read write")
    ///     .scope("admin");
    /// assert_eq!(request.requested_scopes(), ["read", "write", "admin"]);
    /// assert_eq!(form(&request).await, "grant_type=client_credentials&scope=read+write+admin");
    /// # }
    /// ```
    pub fn scope(mut self, scope: impl AsRef<str>) -> Self {
        self.scopes
            .extend(scope.as_ref().split_whitespace().map(str::to_owned));
        self
    }

    /// Asks for several scopes.
    ///
    /// ```
    /// use tower_bearer::oauth::ClientCredentialsRequest;
    ///
    /// let request = ClientCredentialsRequest::new("https://idp.example/token").unwrap()
    ///     .scopes(["openid", "inspect"]);
    /// assert_eq!(request.requested_scopes(), ["openid", "inspect"]);
    /// ```
    pub fn scopes<I>(self, scopes: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        scopes.into_iter().fold(self, |r, s| r.scope(s))
    }

    /// Asks for a token for this resource (RFC 8707; repeatable).
    ///
    /// ```
    /// use tower_bearer::oauth::ClientCredentialsRequest;
    ///
    /// # use tower_bearer::oauth::ClientAuth;
    /// # async fn form(request: &ClientCredentialsRequest) -> String {
    /// #     let auth = ClientAuth::client_secret_basic("id", "secret");
    /// #     let credentials = auth.credentials(request.token_url()).await.unwrap();
    /// #     String::from_utf8(request.http_request(&credentials).unwrap().into_body()).unwrap()
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let request = ClientCredentialsRequest::new("https://idp.example/token").unwrap()
    ///     .resource("https://api.example");
    /// assert_eq!(form(&request).await, "grant_type=client_credentials&resource=https%3A%2F%2Fapi.example");
    /// # }
    /// ```
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// Asks for a token for this audience (Auth0 and others).
    ///
    /// ```
    /// use tower_bearer::oauth::ClientCredentialsRequest;
    ///
    /// # use tower_bearer::oauth::ClientAuth;
    /// # async fn form(request: &ClientCredentialsRequest) -> String {
    /// #     let auth = ClientAuth::client_secret_basic("id", "secret");
    /// #     let credentials = auth.credentials(request.token_url()).await.unwrap();
    /// #     String::from_utf8(request.http_request(&credentials).unwrap().into_body()).unwrap()
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let request = ClientCredentialsRequest::new("https://tenant.auth0.example/oauth/token").unwrap()
    ///     .audience("https://api.example");
    /// assert_eq!(form(&request).await, "grant_type=client_credentials&audience=https%3A%2F%2Fapi.example");
    /// # }
    /// ```
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Adds another form parameter.
    ///
    /// ```
    /// use tower_bearer::oauth::ClientCredentialsRequest;
    ///
    /// # use tower_bearer::oauth::ClientAuth;
    /// # async fn form(request: &ClientCredentialsRequest) -> String {
    /// #     let auth = ClientAuth::client_secret_basic("id", "secret");
    /// #     let credentials = auth.credentials(request.token_url()).await.unwrap();
    /// #     String::from_utf8(request.http_request(&credentials).unwrap().into_body()).unwrap()
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let request = ClientCredentialsRequest::new("https://idp.example/token").unwrap()
    ///     .param("tenant", "contoso");
    /// assert_eq!(form(&request).await, "grant_type=client_credentials&tenant=contoso");
    /// // What the request sets itself cannot be overridden: building it fails.
    /// let clash = ClientCredentialsRequest::new("https://idp.example/token").unwrap().param("scope", "x");
    /// let auth = ClientAuth::client_secret_basic("id", "secret");
    /// assert!(clash.http_request(&auth.credentials(clash.token_url()).await.unwrap()).is_err());
    /// # }
    /// ```
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// The token endpoint.
    ///
    /// ```
    /// use tower_bearer::oauth::ClientCredentialsRequest;
    ///
    /// let request = ClientCredentialsRequest::new("https://idp.example/token?tenant=a").unwrap();
    /// assert_eq!(request.token_url().host(), Some("idp.example"));
    /// assert_eq!(request.token_url().query(), Some("tenant=a"));
    /// ```
    pub fn token_url(&self) -> &Uri {
        &self.token_url
    }

    /// The requested scopes.
    ///
    /// ```
    /// use tower_bearer::oauth::ClientCredentialsRequest;
    ///
    /// let request = ClientCredentialsRequest::new("https://idp.example/token").unwrap();
    /// assert!(request.requested_scopes().is_empty());
    /// assert_eq!(request.scope("a b").requested_scopes(), ["a", "b"]);
    /// ```
    pub fn requested_scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Appends what makes this request's tokens different to a store key's parts, each list
    /// after its length: the token URL as given (with its own query), the scopes sorted and
    /// without duplicates (RFC 6749 §3.3: their order does not matter), the resources in order,
    /// the audience, the extra parameters in order. Where `grant_type` travels is left out: it
    /// changes how a request is sent, not the token.
    #[cfg(feature = "redis")]
    pub(crate) fn key_parts<'a>(&'a self, parts: &mut Vec<std::borrow::Cow<'a, str>>) {
        use std::borrow::Cow;
        let mut scopes: Vec<&str> = self.scopes.iter().map(String::as_str).collect();
        scopes.sort_unstable();
        scopes.dedup();
        parts.push(Cow::Owned(self.token_url.to_string()));
        parts.push(Cow::Owned(scopes.len().to_string()));
        parts.extend(scopes.into_iter().map(Cow::Borrowed));
        parts.push(Cow::Owned(self.resources.len().to_string()));
        parts.extend(self.resources.iter().map(|r| Cow::Borrowed(r.as_str())));
        match &self.audience {
            None => parts.push(Cow::Borrowed("0")),
            Some(audience) => {
                parts.push(Cow::Borrowed("1"));
                parts.push(Cow::Borrowed(audience));
            }
        }
        parts.push(Cow::Owned(self.params.len().to_string()));
        for (name, value) in &self.params {
            parts.push(Cow::Borrowed(name));
            parts.push(Cow::Borrowed(value));
        }
    }

    /// The HTTP request that sends `credentials` (made by [`ClientAuth::credentials`] for
    /// this request's [`token_url`](Self::token_url)): `POST`, form-urlencoded,
    /// `Accept: application/json`.
    ///
    /// A pure function: no I/O, no clock, no randomness. The body, which holds the client
    /// secret or assertion, is written into room reserved up front for its longest encoding,
    /// so it never reallocates (which would free a copy of the secret unwiped).
    ///
    /// Fails with a configuration error if a scope holds a character RFC 6749 §3.3 does not
    /// allow, or an extra parameter is one the request sets itself.
    ///
    /// ```
    /// use tower_bearer::oauth::{ClientAuth, ClientCredentialsRequest};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let request = ClientCredentialsRequest::new("https://id.example/api/id/v1/auth/token")
    ///     .unwrap()
    ///     .scope("openid inspect");
    /// let auth = ClientAuth::client_secret_basic("client", "secret");
    /// let http = request.http_request(&auth.credentials(request.token_url()).await.unwrap()).unwrap();
    /// assert!(http.headers()["authorization"].is_sensitive());
    /// assert_eq!(http.body(), b"grant_type=client_credentials&scope=openid+inspect");
    /// # }
    /// ```
    pub fn http_request(
        &self,
        credentials: &Credentials<'_>,
    ) -> Result<Request<Vec<u8>>, TokenError> {
        for scope in &self.scopes {
            if let Some(c) = illegal_scope_char(scope) {
                return Err(TokenError::configuration(
                    format!(
                        "the scope `{}` holds {c:?}, which RFC 6749 §3.3 does not allow",
                        crate::error::sanitize(scope)
                    ),
                    "write each scope without spaces, quotes or backslashes, as the provider \
                     documents it",
                ));
            }
        }
        if let Some((name, _)) = self
            .params
            .iter()
            .find(|(name, _)| RESERVED.contains(&name.as_str()))
        {
            return Err(TokenError::configuration(
                format!("the extra parameter `{name}` is set by the request itself"),
                "use the request's own setter (scope, resource, audience, client auth)",
            ));
        }
        let uri = self.send_to.clone().ok_or_else(|| {
            TokenError::configuration(
                "the token URL with grant_type in its query is not a valid URL",
                "check the token URL's path and query",
            )
        })?;

        // The body holds the client secret or assertion: room for the longest encoding is
        // reserved up front, so it never grows (a reallocation would free a copy unwiped), and
        // it is wiped if the request is not built.
        let mut body = Zeroizing::new(String::with_capacity(self.form_capacity(credentials)));
        let mut form = form_urlencoded::Serializer::new(&mut *body);
        if self.grant_type_in == GrantTypeIn::Body && !self.url_has_grant_type {
            form.append_pair("grant_type", "client_credentials");
        }
        if !self.scopes.is_empty() {
            form.append_pair("scope", &self.scopes.join(" "));
        }
        for resource in &self.resources {
            form.append_pair("resource", resource);
        }
        if let Some(audience) = &self.audience {
            form.append_pair("audience", audience);
        }
        for (name, value) in &self.params {
            form.append_pair(name, value);
        }
        let mut headers = http::HeaderMap::new();
        credentials.write(&mut form, &mut headers)?;
        form.finish();

        let mut request = Request::new(std::mem::take(&mut *body).into_bytes());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        *request.headers_mut() = headers;
        Ok(request)
    }

    /// The HTTP request, with `auth` applied. Fails for [`ClientAuth::client_assertion`],
    /// whose assertion comes from async code.
    #[deprecated(
        since = "0.2.0",
        note = "make the credentials with `ClientAuth::credentials(token_url).await`, then build \
                with `ClientCredentialsRequest::http_request`"
    )]
    pub fn build(&self, auth: &ClientAuth) -> Result<Request<Vec<u8>>, TokenError> {
        self.http_request(&auth.credentials_now(&self.token_url)?)
    }

    /// The HTTP request, sending `assertion` as the client assertion of a `private_key_jwt`
    /// `auth` (a secret `auth` sends its secret).
    #[deprecated(
        since = "0.2.0",
        note = "make the credentials with `ClientAuth::credentials(token_url).await` (a \
                `ClientAuth::client_assertion` hook supplies the assertion), then build with \
                `ClientCredentialsRequest::http_request`"
    )]
    pub fn build_with_assertion(
        &self,
        auth: &ClientAuth,
        assertion: &str,
    ) -> Result<Request<Vec<u8>>, TokenError> {
        self.http_request(&auth.credentials_with_assertion(assertion))
    }
}

/// Whether `url` is plain `http://` to a host that is not loopback: what a token URL may only
/// be if insecure http is allowed.
pub(crate) fn is_plain_http_to_remote(url: &str) -> bool {
    url.trim()
        .parse::<Uri>()
        .is_ok_and(|u| u.scheme() == Some(&Scheme::HTTP) && !u.host().is_some_and(is_loopback))
}

/// The first character of `scope` that RFC 6749 §3.3 does not allow in a scope token (`NQCHAR`:
/// `%x21 / %x23-5B / %x5D-7E`: no space, `"`, `\\`, control or non-ASCII character).
pub(crate) fn illegal_scope_char(scope: &str) -> Option<char> {
    scope.chars().find(|&c| {
        !(c == '\x21' || ('\x23'..='\x5b').contains(&c) || ('\x5d'..='\x7e').contains(&c))
    })
}

/// Refuses a URL with user information (`user:password@host`): credentials do not belong in
/// a token or issuer URL, where they would reach the `Debug` output, traces, errors and a
/// client assertion's `aud`. The error names the host only, never any part of the user
/// information (nor the URL, which holds it).
///
/// Judged on the text, before any parsing, so that a URL too broken to parse is refused (or
/// reported) without being echoed either.
pub(crate) fn check_no_userinfo(url: &str) -> Result<(), TokenError> {
    let text = url.trim();
    let after_scheme = match text.find("://") {
        Some(i) if !text[..i].contains(['/', '?', '#', '@']) => &text[i + 3..],
        _ => text,
    };
    let authority_end = after_scheme
        .find(['/', '?', '#', '\\'])
        .unwrap_or(after_scheme.len());
    let authority = &after_scheme[..authority_end];
    let Some(at) = authority.rfind('@') else {
        if text.contains('@') {
            // In the path or query as the URL reads: legal, but also what `user:pa/ss@host`
            // looks like when a password holds `/`, `?` or `#`. Refused, not echoed.
            return Err(TokenError::configuration(
                "the token URL contains `@` after its host (not shown: it may be user \
                 information whose password holds `/`, `?` or `#`)",
                "percent-encode `@` as %40 in the path or query; if the URL holds \
                 `user:password@`, remove it and give the credentials through the client \
                 authentication",
            ));
        }
        return Ok(());
    };
    let host_and_port = &authority[at + 1..];
    let host = match host_and_port.rfind(':') {
        Some(colon) if !host_and_port[colon..].contains(']') => &host_and_port[..colon],
        _ => host_and_port,
    };
    let named = if host.is_empty() {
        String::from("the token URL")
    } else {
        format!("the token URL for `{}`", crate::error::sanitize(host))
    };
    Err(TokenError::configuration(
        format!("{named} contains user information (`user:password@`), which is not allowed"),
        "remove `user:password@` from the URL: give the client id and secret through the \
         client authentication, never in the URL",
    ))
}

/// The token URL for an error message: sanitised, unless it holds an `@` anywhere (which could
/// be user information the URL parser did not recognise as such): then it is not shown.
fn shown_url(url: &str) -> String {
    if url.contains('@') {
        String::from("(not shown: it contains `@`)")
    } else {
        format!("`{}`", crate::error::sanitize(url))
    }
}

/// `url` with any user information (`user:password@`) replaced by `***@`, for `Debug` output of
/// settings not yet checked (a provider builder holding the URL it was given).
pub(crate) fn redact_userinfo(url: &str) -> std::borrow::Cow<'_, str> {
    if !url.contains('@') {
        return std::borrow::Cow::Borrowed(url);
    }
    if check_no_userinfo(url).is_ok() {
        // An `@` after the authority as this reads it: a password holding `/`, `?` or `#`
        // would look like that, so the URL is not shown.
        return std::borrow::Cow::Owned(String::from("(URL not shown: it contains `@`)"));
    }
    let text = url.trim();
    let (scheme, rest) = match text.find("://") {
        Some(i) if !text[..i].contains(['/', '?', '#', '@']) => (&text[..i + 3], &text[i + 3..]),
        _ => ("", text),
    };
    let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let at = rest[..end].rfind('@').unwrap_or(0);
    std::borrow::Cow::Owned(format!("{scheme}***@{}", &rest[at + 1..]))
}

impl ClientCredentialsRequest {
    /// The most bytes the form body can take: each byte of a name or value encodes to at most
    /// 3, plus `=` and `&` for each pair.
    fn form_capacity(&self, credentials: &Credentials<'_>) -> usize {
        let pair = |name: &str, value: &str| 3 * (name.len() + value.len()) + 2;
        let scope: usize = self.scopes.iter().map(|s| s.len() + 1).sum();
        pair("grant_type", "client_credentials")
            + pair("scope", "")
            + 3 * scope
            + self
                .resources
                .iter()
                .map(|r| pair("resource", r))
                .sum::<usize>()
            + self.audience.as_deref().map_or(0, |a| pair("audience", a))
            + self.params.iter().map(|(n, v)| pair(n, v)).sum::<usize>()
            + credentials.form_capacity()
    }
}

/// The value of `grant_type` in the URL's query, if it has one.
fn query_grant_type(uri: &Uri) -> Option<String> {
    form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(name, _)| name == "grant_type")
        .map(|(_, value)| value.into_owned())
}

/// The token URL (whose query has no `grant_type`) with `grant_type=client_credentials`
/// appended to its query; `None` if that does not make a valid URL.
fn with_query_grant_type(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    let path_and_query = match uri.query() {
        Some(q) if !q.is_empty() => format!("{path}?{q}&grant_type=client_credentials"),
        _ => format!("{path}?grant_type=client_credentials"),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(path_and_query).ok()?);
    Uri::from_parts(parts).ok()
}

impl fmt::Debug for ClientCredentialsRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsRequest")
            .field("token_url", &self.token_url)
            .field("grant_type_in", &self.grant_type_in)
            .field("scopes", &self.scopes)
            .field("resources", &self.resources)
            .field("audience", &self.audience)
            .field(
                "params",
                &self.params.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    /// The two steps in one, for tests: every method here makes its credentials without
    /// waiting.
    trait BuildFor {
        fn build_for(&self, auth: &ClientAuth) -> Result<Request<Vec<u8>>, TokenError>;
    }

    impl BuildFor for ClientCredentialsRequest {
        fn build_for(&self, auth: &ClientAuth) -> Result<Request<Vec<u8>>, TokenError> {
            let credentials = auth
                .credentials(self.token_url())
                .now_or_never()
                .expect("made without waiting")?;
            self.http_request(&credentials)
        }
    }
    use crate::error::TokenErrorKind;

    fn form(request: &Request<Vec<u8>>) -> Vec<(String, String)> {
        form_urlencoded::parse(request.body())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn entra_style_post_request() {
        let request = ClientCredentialsRequest::new(
            "https://login.microsoftonline.com/tenant-id/oauth2/v2.0/token",
        )
        .unwrap()
        .scope("api://kontrolle-plus/.default")
        .build_for(&ClientAuth::client_secret_post("app-id", "s3cr3t&=+"))
        .unwrap();
        assert_eq!(request.method(), Method::POST);
        assert_eq!(
            request.headers()[CONTENT_TYPE],
            "application/x-www-form-urlencoded"
        );
        assert_eq!(request.headers()[ACCEPT], "application/json");
        assert!(request.headers().get(http::header::AUTHORIZATION).is_none());
        assert_eq!(
            form(&request),
            pairs(&[
                ("grant_type", "client_credentials"),
                ("scope", "api://kontrolle-plus/.default"),
                ("client_id", "app-id"),
                ("client_secret", "s3cr3t&=+"),
            ])
        );
    }

    #[test]
    fn basic_auth_request_has_no_secret_in_the_body() {
        let request = ClientCredentialsRequest::new("https://id.example/api/id/v1/auth/token")
            .unwrap()
            .scopes(["openid email", "profile", "inspect"])
            .build_for(&ClientAuth::client_secret_basic("client", "secret"))
            .unwrap();
        assert!(request.headers()[http::header::AUTHORIZATION].is_sensitive());
        assert_eq!(
            form(&request),
            pairs(&[
                ("grant_type", "client_credentials"),
                ("scope", "openid email profile inspect"),
            ])
        );
    }

    #[test]
    fn grant_type_in_the_query_keeps_the_urls_own_query() {
        let auth = ClientAuth::client_secret_post("id", "secret");
        let request = ClientCredentialsRequest::new("https://api.example/token?tenant=a%20b")
            .unwrap()
            .grant_type_in(GrantTypeIn::Query)
            .build_for(&auth)
            .unwrap();
        assert_eq!(
            request.uri().query(),
            Some("tenant=a%20b&grant_type=client_credentials")
        );
        assert!(!form(&request).iter().any(|(k, _)| k == "grant_type"));

        // The KPN URL as documented already carries grant_type: not sent twice.
        let request = ClientCredentialsRequest::new(
            "https://api-prd.kpn.com/oauth/client_credential/accesstoken?grant_type=client_credentials",
        )
        .unwrap()
        .build_for(&auth)
        .unwrap();
        assert_eq!(request.uri().query(), Some("grant_type=client_credentials"));
        assert_eq!(
            form(&request),
            pairs(&[("client_id", "id"), ("client_secret", "secret")])
        );
    }

    #[test]
    fn resource_audience_and_extra_parameters() {
        let request = ClientCredentialsRequest::new("https://as.example/token")
            .unwrap()
            .resource("https://api.example/a")
            .resource("https://api.example/b")
            .audience("partner-api")
            .param("tenant", "t1")
            .build_for(&ClientAuth::client_secret_basic("id", "s"))
            .unwrap();
        assert_eq!(
            form(&request),
            pairs(&[
                ("grant_type", "client_credentials"),
                ("resource", "https://api.example/a"),
                ("resource", "https://api.example/b"),
                ("audience", "partner-api"),
                ("tenant", "t1"),
            ])
        );
        let err = ClientCredentialsRequest::new("https://as.example/token")
            .unwrap()
            .param("client_secret", "x")
            .build_for(&ClientAuth::client_secret_basic("id", "s"))
            .unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::Configuration);
    }

    #[test]
    fn token_url_must_be_https_unless_loopback_or_allowed() {
        let err = ClientCredentialsRequest::new("http://login.example/token").unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::Configuration);
        assert!(err.to_string().contains("plain http"));
        assert!(ClientCredentialsRequest::new("http://127.0.0.1:8080/token").is_ok());
        assert!(ClientCredentialsRequest::new("http://localhost/token").is_ok());
        assert!(
            ClientCredentialsRequest::new_allow_insecure_http("http://login.example/t").is_ok()
        );
        for bad in [
            "/token",
            "login.example/token",
            "ftp://login.example/token",
            "https://exa mple/",
        ] {
            let err = ClientCredentialsRequest::new(bad).unwrap_err();
            assert_eq!(err.kind(), TokenErrorKind::Configuration, "{bad}");
        }
        let err = ClientCredentialsRequest::new("https://as.example/token?grant_type=password")
            .unwrap_err();
        assert!(err.to_string().contains("grant_type=password"));
    }

    #[cfg(feature = "private-key-jwt")]
    #[test]
    fn private_key_jwt_sends_a_fresh_assertion_for_the_token_endpoint() {
        use crate::oauth::assertion::{Algorithm, JwtSigner};
        use base64::Engine;
        let key = include_str!("../../tests/fixtures/rsa-pkcs8.pem");
        let auth = ClientAuth::private_key_jwt(
            "app-id",
            JwtSigner::from_pem(key, Algorithm::Rs256).unwrap(),
        );
        let request =
            ClientCredentialsRequest::new("https://login.example/tenant/oauth2/v2.0/token?x=1")
                .unwrap()
                .scope("api://kontrolle-plus/.default");
        let first = form(&request.build_for(&auth).unwrap());
        let names: Vec<&str> = first.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "grant_type",
                "scope",
                "client_id",
                "client_assertion_type",
                "client_assertion"
            ]
        );
        assert_eq!(first[2].1, "app-id");
        assert_eq!(
            first[3].1,
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        );
        let jwt = &first[4].1;
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(jwt.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            claims["aud"],
            "https://login.example/tenant/oauth2/v2.0/token"
        );
        let second = form(&request.build_for(&auth).unwrap());
        assert_ne!(first[4].1, second[4].1, "a fresh assertion per request");

        let auth = auth.assertion_audience("https://login.example/tenant/v2.0");
        let third = form(&request.build_for(&auth).unwrap());
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(third[4].1.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["aud"], "https://login.example/tenant/v2.0");
    }

    #[test]
    fn the_form_body_never_grows_so_no_unwiped_copy_of_the_secret_is_freed() {
        // Every byte of these needs the longest encoding (3 bytes).
        let secret = "é€£ &=+%/".repeat(40);
        let request = ClientCredentialsRequest::new("https://as.example/token")
            .unwrap()
            .scope("a b")
            .resource("https://api/€")
            .audience("€")
            .param("x", "€€");
        for auth in [
            ClientAuth::client_secret_post("ïd€", &secret),
            ClientAuth::client_secret_basic("ïd€", &secret),
        ] {
            let credentials = auth.credentials_now(request.token_url()).unwrap();
            let reserved = request.form_capacity(&credentials);
            let built = request.http_request(&credentials).unwrap();
            // Had the body grown, its capacity would have at least doubled.
            assert_eq!(built.body().capacity(), reserved);
            assert!(built.body().len() <= reserved);
        }
        let assertion = "eyJ.€".repeat(200);
        let auth = ClientAuth::client_assertion("ïd€", move |_| {
            let assertion = assertion.clone();
            async move { Ok(assertion) }
        });
        let credentials = auth
            .credentials(request.token_url())
            .now_or_never()
            .unwrap()
            .unwrap();
        let reserved = request.form_capacity(&credentials);
        let built = request.http_request(&credentials).unwrap();
        assert_eq!(built.body().capacity(), reserved);
    }

    #[test]
    fn grant_type_in_the_query_is_read_once_and_sent_once() {
        let auth = ClientAuth::client_secret_post("id", "secret");
        // Given in the URL: sent there only, whichever place is asked for afterwards.
        for place in [GrantTypeIn::Query, GrantTypeIn::Body] {
            let request = ClientCredentialsRequest::new(
                "https://api.example/token?grant_type=client_credentials&x=1",
            )
            .unwrap()
            .grant_type_in(place);
            let built = request.build_for(&auth).unwrap();
            assert_eq!(
                built.uri().query(),
                Some("grant_type=client_credentials&x=1"),
                "{place:?}"
            );
            assert!(!form(&built).iter().any(|(k, _)| k == "grant_type"));
        }
        // Not in the URL: the body by default, the query when asked, and back again.
        let request = ClientCredentialsRequest::new("https://api.example/token").unwrap();
        let query = request.clone().grant_type_in(GrantTypeIn::Query);
        assert_eq!(
            query.build_for(&auth).unwrap().uri(),
            "https://api.example/token?grant_type=client_credentials"
        );
        assert_eq!(query.token_url(), "https://api.example/token");
        let body = query
            .grant_type_in(GrantTypeIn::Body)
            .build_for(&auth)
            .unwrap();
        assert_eq!(body.uri(), "https://api.example/token");
        assert_eq!(
            form(&body)[0],
            ("grant_type".into(), "client_credentials".into())
        );
    }

    #[test]
    fn credentials_debug_shows_no_secret_and_the_redactor_knows_the_assertion() {
        let request = ClientCredentialsRequest::new("https://as.example/token").unwrap();
        for auth in [
            ClientAuth::client_secret_post("id", "S3cret-Value"),
            ClientAuth::client_secret_basic("id", "S3cret-Value"),
        ] {
            let credentials = auth.credentials_now(request.token_url()).unwrap();
            let shown = format!("{credentials:?} {credentials:#?}");
            assert!(!shown.contains("S3cret"), "{shown}");
            assert!(shown.contains("[redacted]"), "{shown}");
            assert_eq!(credentials.redactor().redact("S3cret-Value"), "[redacted]");
        }
        let auth = ClientAuth::client_assertion("id", |_| async {
            Ok(String::from(
                "eyJhbGciOiJub25lIn0.eyJzdWIiOiJpZCJ9.c2lnbmF0dXJl",
            ))
        });
        let credentials = auth
            .credentials(request.token_url())
            .now_or_never()
            .unwrap()
            .unwrap();
        let shown = format!("{credentials:?}");
        assert!(!shown.contains("eyJ"), "{shown}");
        assert_eq!(credentials.method(), "private_key_jwt");
        assert_eq!(
            credentials
                .redactor()
                .redact("echo eyJhbGciOiJub25lIn0.eyJzdWIiOiJpZCJ9.c2lnbmF0dXJl"),
            "echo [redacted]"
        );
        // The client's own redactor is not changed by one request's assertion.
        assert!(auth.credentials_now(request.token_url()).is_err());
    }

    #[test]
    #[allow(deprecated)]
    fn the_deprecated_builders_still_build() {
        let request = ClientCredentialsRequest::new("https://as.example/token").unwrap();
        let built = request
            .build(&ClientAuth::client_secret_post("id", "secret"))
            .unwrap();
        assert_eq!(
            form(&built),
            pairs(&[
                ("grant_type", "client_credentials"),
                ("client_id", "id"),
                ("client_secret", "secret"),
            ])
        );
        let hook = ClientAuth::client_assertion("id", |_| async { Ok(String::from("jwt")) });
        let err = request.build(&hook).unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::Configuration);
        assert!(err.hint().unwrap().contains("http_request"), "{err}");
        let built = request.build_with_assertion(&hook, "given.jwt").unwrap();
        assert_eq!(form(&built).last().unwrap().1, "given.jwt");
    }

    #[test]
    fn scopes_are_checked() {
        let err = ClientCredentialsRequest::new("https://as.example/token")
            .unwrap()
            .scope("a\"b")
            .build_for(&ClientAuth::client_secret_basic("id", "s"))
            .unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::Configuration);
    }
}

#[cfg(test)]
mod userinfo_tests {
    use super::*;
    use crate::error::TokenErrorKind;

    /// Every spelling of credentials in the token URL is refused, and neither the user nor the
    /// password (nor their percent-encoded forms) is in the error's `Display` or `Debug`.
    #[test]
    fn token_url_userinfo_is_refused_without_echoing_it() {
        let cases = [
            (
                "https://alice:PASSWORD-1@login.example/token",
                &["alice", "PASSWORD-1"][..],
            ),
            (
                "http://alice:PASSWORD-2@login.example/token",
                &["alice", "PASSWORD-2"],
            ),
            (
                "http://alice:PASSWORD-3@127.0.0.1:8080/token",
                &["alice", "PASSWORD-3"],
            ),
            (
                "https://PASSWORDONLY4@login.example:8443/token",
                &["PASSWORDONLY4"],
            ),
            (
                "https://al%69ce:PA%53%53WORD%40x@login.example/token",
                &["al%69ce", "alice", "PA%53%53WORD", "PASSWORD", "%40x"],
            ),
            (
                "https://alice:PASS@WORD@login.example/token",
                &["alice", "PASS", "WORD@"],
            ),
            (
                "ftp://alice:PASSWORD-5@login.example/token",
                &["alice", "PASSWORD-5"],
            ),
            // Not valid URLs at all: still not echoed.
            (
                "https://alice:PASS/WORD@login.example/token",
                &["alice", "PASS", "WORD"],
            ),
            (
                "https://alice:PASS WORD@login.example/token",
                &["alice", "PASS", "WORD"],
            ),
            (
                "alice:PASSWORD-6@login.example/token",
                &["alice", "PASSWORD-6"],
            ),
        ];
        for (url, secrets) in cases {
            for result in [
                ClientCredentialsRequest::new(url),
                ClientCredentialsRequest::new_allow_insecure_http(url),
            ] {
                let err = result.expect_err(url);
                assert_eq!(err.kind(), TokenErrorKind::Configuration, "{url}");
                let shown = format!("{err} {err:?}");
                for secret in secrets {
                    assert!(!shown.contains(secret), "{url}: {secret} shown in {shown}");
                }
            }
        }
        for url in [
            "https://login.example/a@b/token",
            "https://login.example:PASS/token",
        ] {
            let err = ClientCredentialsRequest::new(url).unwrap_err();
            assert_eq!(err.kind(), TokenErrorKind::Configuration, "{url}");
            assert!(!err.to_string().contains("PASS"), "{err}");
        }
        let err = ClientCredentialsRequest::new("https://alice:PASSWORD@login.example/token")
            .unwrap_err();
        assert!(err.to_string().contains("login.example"), "{err}");
        assert!(err.to_string().contains("user information"), "{err}");
    }
}

#[cfg(test)]
mod redact_tests {
    use super::redact_userinfo;

    #[test]
    fn debug_of_unchecked_urls_hides_userinfo() {
        assert_eq!(
            redact_userinfo("https://login.example/t"),
            "https://login.example/t"
        );
        assert_eq!(
            redact_userinfo("https://al:PW@login.example/t"),
            "https://***@login.example/t"
        );
        assert!(!redact_userinfo("https://al:P/W@login.example/t").contains("al:P"));
    }
}
