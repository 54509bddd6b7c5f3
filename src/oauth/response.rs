//! Reading what a token endpoint answered: a token (RFC 6749 §5.1) or an error (§5.2), in the
//! shapes real providers use. Pure functions: bytes in, [`Token`] or [`TokenError`] out.
//!
//! Tolerant where servers differ (numbers as strings, empty strings for absent values,
//! `BearerToken` for `Bearer`, camelCase and Apigee error shapes, extra fields), strict where
//! safety needs it (a missing or empty `access_token`, one that cannot be a header value, a
//! token type other than Bearer, a `200` that carries an `error`).
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use http::{HeaderMap, StatusCode};
//! use tokio::time::Instant;
//! use tower_bearer::TokenErrorKind;
//! use tower_bearer::oauth::response::parse_token_response;
//!
//! let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#;
//! let (now, wall) = (Instant::now(), SystemTime::now());
//! let status = StatusCode::UNAUTHORIZED;
//! let err = parse_token_response(status, &HeaderMap::new(), body, now, wall, Duration::from_secs(600)).unwrap_err();
//! assert_eq!(err.kind(), TokenErrorKind::CredentialsRejected);
//! assert_eq!(err.code(), Some("invalid_client"));
//! ```

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, StatusCode, header::RETRY_AFTER};
use serde_json::{Map, Value};
use tokio::time::Instant;
use zeroize::Zeroizing;

use crate::error::{ErrorDetail, SHORT_TEXT, TokenError, TokenErrorKind, sanitize_with};
use crate::oauth::redact::Redactor;
use crate::token::{MAX_LIFETIME, Token};

/// Fields of a token response that [`Token`] holds itself; every other field goes to
/// [`Token::extra`].
const KNOWN_FIELDS: [&str; 7] = [
    "access_token",
    "token_type",
    "expires_in",
    "scope",
    "refresh_token",
    "id_token",
    "issued_at",
];

/// Longest piece of a server's text kept in an error: a description, a body's start. Names
/// (codes, token types, ids) keep at most [`SHORT_TEXT`] characters.
const MAX_TEXT: usize = 300;

/// What a token endpoint said about an error, in whichever shape it used (RFC 6749, camelCase,
/// Apigee's `ErrorCode`/`fault`, Entra ID's extras), sanitised, shortened and redacted: the
/// OAuth client's [detail](TokenError::detail) of a [`TokenError`]. The error code itself is
/// [`TokenError::code`]; the support ids are also the error's
/// [support references](TokenError::support_refs), shown in its `Display`.
///
/// ```
/// use std::time::SystemTime;
/// use http::{HeaderMap, StatusCode};
/// use tower_bearer::oauth::ProviderError;
/// use tower_bearer::oauth::response::parse_error_response;
///
/// let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215],"trace_id":"0c1b"}"#;
/// let err = parse_error_response(StatusCode::UNAUTHORIZED, &HeaderMap::new(), body, SystemTime::now());
/// let said = err.detail::<ProviderError>().unwrap();
/// assert_eq!(said.error_codes, [7000215]);
/// assert_eq!(said.trace_id.as_deref(), Some("0c1b"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderError {
    /// The description: `error_description`, `errorDescription`, Apigee's `Error` or
    /// `fault.faultstring`, or `message`.
    pub description: Option<String>,
    /// `error_uri`.
    pub uri: Option<String>,
    /// Entra ID's numeric `error_codes` (AADSTS codes).
    pub error_codes: Vec<i64>,
    /// Entra ID's `trace_id`.
    pub trace_id: Option<String>,
    /// Entra ID's `correlation_id`.
    pub correlation_id: Option<String>,
    /// Entra ID's `timestamp`.
    pub timestamp: Option<String>,
    /// The start of a body that is not a JSON error, sanitised.
    pub body_snippet: Option<String>,
}

impl ErrorDetail for ProviderError {
    fn for_each_text_mut(&mut self, f: &mut dyn FnMut(&mut String)) {
        for text in [
            &mut self.description,
            &mut self.uri,
            &mut self.trace_id,
            &mut self.correlation_id,
            &mut self.timestamp,
            &mut self.body_snippet,
        ]
        .into_iter()
        .flatten()
        {
            f(text);
        }
    }
}

impl TokenError {
    /// What the token endpoint said, if it answered with an error.
    #[deprecated(
        since = "0.2.0",
        note = "use `detail::<oauth::ProviderError>()`, and `code()` for the error code"
    )]
    pub fn provider_error(&self) -> Option<&ProviderError> {
        self.detail::<ProviderError>()
    }
}

/// Parses a token endpoint's answer.
///
/// - `received_at`: when the answer arrived (the expiry is counted from it);
/// - `now`: the wall clock then, to honour Apigee's `issued_at` (epoch milliseconds);
/// - `default_lifetime`: the lifetime of a token whose answer has no `expires_in`.
///
/// A non-2xx status, or a 2xx whose body carries `error`, is parsed with
/// [`parse_error_response`].
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use http::{HeaderMap, StatusCode};
/// use tokio::time::Instant;
/// use tower_bearer::oauth::response::parse_token_response;
///
/// // KPN's API Store (Apigee): every value is a string.
/// let body = br#"{"access_token":"staG765sBUuai4OMeZiTful6PTRt","token_type":"BearerToken",
///                 "expires_in":"3599","scope":"","refresh_token":"","status":"approved"}"#;
/// let now = Instant::now();
/// let token = parse_token_response(
///     StatusCode::OK, &HeaderMap::new(), body, now, SystemTime::now(), Duration::from_secs(600),
/// ).unwrap();
/// assert!(token.is_bearer());
/// assert_eq!(token.lifetime(), Some(Duration::from_secs(3599)));
/// assert_eq!(token.scope(), None);
/// assert!(token.refresh_token().is_none());
/// assert_eq!(token.extra()["status"], "approved");
/// ```
pub fn parse_token_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    received_at: Instant,
    now: SystemTime,
    default_lifetime: Duration,
) -> Result<Token, TokenError> {
    parse_token_response_redacting(
        status,
        headers,
        body,
        received_at,
        now,
        default_lifetime,
        &Redactor::new(),
    )
}

/// [`parse_token_response`] for a request that sent secrets: every form of them that the
/// server echoed (see [`Redactor`]) is removed from the raw body before any of it is read into
/// an error, cut short or folded, and again from each piece of text the error keeps. A token
/// is read from the body as it is.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use http::{HeaderMap, StatusCode};
/// use tokio::time::Instant;
/// use tower_bearer::oauth::Redactor;
/// use tower_bearer::oauth::response::parse_token_response_redacting;
///
/// let redactor = Redactor::new().secret("Q3h8Q~Zt2");
/// let body = br#"{"error":"invalid_client","error_description":"bad client_secret=Q3h8Q%7EZt2"}"#;
/// let err = parse_token_response_redacting(
///     StatusCode::UNAUTHORIZED, &HeaderMap::new(), body, Instant::now(), SystemTime::now(),
///     Duration::from_secs(600), &redactor,
/// ).unwrap_err();
/// assert!(err.to_string().contains("bad client_secret=[redacted]"));
/// assert!(!format!("{err:?}").contains("Q3h8"));
/// ```
pub fn parse_token_response_redacting(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    received_at: Instant,
    now: SystemTime,
    default_lifetime: Duration,
    redactor: &Redactor,
) -> Result<Token, TokenError> {
    let r = redactor;
    if !status.is_success() {
        return Err(parse_error_response_redacting(
            status, headers, body, now, r,
        ));
    }
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(malformed(
            status,
            "the token endpoint answered with a body that is not a JSON object",
        )
        .with_detail(snippet_only(&r.redact_bytes(body), r)));
    };
    if fields.get("error").is_some_and(|e| !e.is_null()) {
        // Read again from the redacted body.
        return Err(parse_error_response_redacting(
            status, headers, body, now, r,
        ));
    }

    // The tokens are moved out of the parsed answer, not copied, and wiped if not used.
    let mut access_token = match fields.remove("access_token") {
        Some(Value::String(s)) if !s.is_empty() => Zeroizing::new(s),
        Some(Value::String(_)) => {
            return Err(TokenError::new(
                TokenErrorKind::MalformedAnswer,
                "the token endpoint answered a token response whose `access_token` is empty",
            )
            .with_status(status)
            .with_hint(
                "the provider issued no token for this request: check with the provider that \
                 the client is set up for the client-credentials grant and is granted the \
                 scope or API it asks for",
            ));
        }
        Some(Value::Null) | None => {
            return Err(malformed(status, "the answer has no `access_token`"));
        }
        Some(_) => return Err(malformed(status, "`access_token` is not a string")),
    };
    let mut take_secret = |name: &str| match fields.remove(name) {
        Some(Value::String(s)) => Some(Zeroizing::new(s)),
        _ => None,
    };
    let mut refresh_token = take_secret("refresh_token");
    let mut id_token = take_secret("id_token");

    let token_type = match fields.get("token_type") {
        None | Some(Value::Null) => "Bearer".to_owned(),
        Some(Value::String(t))
            if t.eq_ignore_ascii_case("bearer") || t.eq_ignore_ascii_case("bearertoken") =>
        {
            "Bearer".to_owned()
        }
        Some(Value::String(t)) => {
            return Err(TokenError::new(
                TokenErrorKind::MalformedAnswer,
                format!(
                    "the token endpoint issued a `{}` token; only Bearer tokens are supported",
                    server_text(t, r, SHORT_TEXT)
                ),
            )
            .with_status(status)
            .with_hint(
                "ask the provider for a Bearer token (this client does not do DPoP or MAC)",
            ));
        }
        Some(_) => return Err(malformed(status, "`token_type` is not a string")),
    };

    let lifetime = match seconds(fields.get("expires_in"), "expires_in", status, r)? {
        Some(expires_in) => {
            match millis(fields.get("issued_at"), "issued_at", status)?.and_then(|issued_ms| {
                let now_ms = now.duration_since(UNIX_EPOCH).ok()?.as_millis();
                Some(Duration::from_millis(
                    u64::try_from(now_ms.saturating_sub(u128::from(issued_ms))).unwrap_or(u64::MAX),
                ))
            }) {
                // Issued a while ago: only what is left counts. An `issued_at` that says the
                // token is already expired means our clocks disagree; then trust `expires_in`.
                Some(age) if age < expires_in => expires_in - age,
                _ => expires_in,
            }
        }
        None => default_lifetime,
    };

    let mut token = Token::new(std::mem::take(&mut *access_token))
        .with_token_type(token_type)
        .with_received_at(received_at)
        .with_expires_in(lifetime.min(MAX_LIFETIME));
    // Checked without building a header value (which could not be wiped).
    token.check_header_value().map_err(|e| {
        TokenError::new(e.kind(), e.message().to_owned())
            .with_status(status)
            .with_hint("the token endpoint issued a token that cannot be sent in a header")
    })?;
    if let Some(scope) = scope(fields.get("scope")) {
        token = token.with_scope(scope);
    }
    if let Some(refresh) = refresh_token.as_mut().filter(|r| !r.is_empty()) {
        token = token.with_refresh_token(std::mem::take(&mut **refresh));
    }
    if let Some(id) = id_token.as_mut().filter(|i| !i.is_empty()) {
        token = token.with_id_token(std::mem::take(&mut **id));
    }
    for name in KNOWN_FIELDS {
        fields.remove(name);
    }
    for (name, value) in fields {
        token = token.with_extra(name, value);
    }
    Ok(token)
}

/// Parses a token endpoint's error answer into a typed error: its kind (RFC 6749 and the
/// providers' codes mapped as [`TokenErrorKind`] says), the provider's code as
/// [`TokenError::code`], a hint, the support ids as support references, and the provider's
/// fields as a [`ProviderError`] detail. Shapes: RFC 6749 (`error`, `error_description`, `error_uri`), camelCase `errorDescription`,
/// Apigee's `{"ErrorCode","Error"}` and `{"fault":{"faultstring","detail":{"errorcode"}}}`,
/// Entra ID's extras (`error_codes`, `trace_id`, `correlation_id`, `timestamp`), and bodies
/// that are not JSON (kept as a short, sanitised snippet). `Retry-After` (seconds or an HTTP
/// date, read against `now`) is kept.
///
/// ```
/// use std::time::SystemTime;
/// use http::{HeaderMap, StatusCode};
/// use tower_bearer::TokenErrorKind;
/// use tower_bearer::oauth::ProviderError;
/// use tower_bearer::oauth::response::parse_error_response;
///
/// let body = br#"{"error":"invalid_scope","error_description":"AADSTS70011: The provided value for the input parameter 'scope' is not valid.","error_codes":[70011],"trace_id":"0c1b","correlation_id":"9f2e","timestamp":"2026-11-23 10:00:00Z"}"#;
/// let err = parse_error_response(StatusCode::BAD_REQUEST, &HeaderMap::new(), body, SystemTime::now());
/// assert_eq!(err.kind(), TokenErrorKind::Configuration);
/// assert_eq!(err.code(), Some("invalid_scope"));
/// assert_eq!(err.detail::<ProviderError>().unwrap().error_codes, [70011]);
/// let shown = err.to_string();
/// assert!(shown.starts_with("token error (configuration: invalid_scope, HTTP 400): "));
/// assert!(shown.contains("correlation_id=9f2e"));
/// ```
pub fn parse_error_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> TokenError {
    parse_error_response_redacting(status, headers, body, now, &Redactor::new())
}

/// [`parse_error_response`] for a request that sent secrets: every form of them that the
/// server echoed (see [`Redactor`]) is removed from the raw body first, then from each piece
/// of text the error keeps, before and after it is cut short.
///
/// ```
/// use std::time::SystemTime;
/// use http::{HeaderMap, StatusCode};
/// use tower_bearer::oauth::{ProviderError, Redactor};
/// use tower_bearer::oauth::response::parse_error_response_redacting;
///
/// let redactor = Redactor::new().basic_credentials("Aladdin", "open sesame");
/// let body = b"<html>401: bad header Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==</html>";
/// let err = parse_error_response_redacting(
///     StatusCode::UNAUTHORIZED, &HeaderMap::new(), body, SystemTime::now(), &redactor,
/// );
/// let snippet = err.detail::<ProviderError>().unwrap().body_snippet.as_deref().unwrap();
/// assert_eq!(snippet, "<html>401: bad header Basic [redacted]==</html>");
/// ```
pub fn parse_error_response_redacting(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
    redactor: &Redactor,
) -> TokenError {
    let r = redactor;
    let body = r.redact_bytes(body);
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(fields)) => error_from_json(status, headers, &fields, now, r),
        _ => {
            let kind = kind_from_status(status);
            with_retry_after(
                TokenError::new(
                    kind,
                    format!(
                        "the token endpoint answered HTTP {} without a JSON error",
                        status.as_u16()
                    ),
                )
                .with_status(status)
                .with_hint(hint(kind, None, status))
                .with_detail(snippet_only(&body, r)),
                headers,
                now,
            )
        }
    }
}

fn error_from_json(
    status: StatusCode,
    headers: &HeaderMap,
    fields: &Map<String, Value>,
    now: SystemTime,
    r: &Redactor,
) -> TokenError {
    let text = |v: Option<&Value>, max: usize| -> Option<String> {
        match v? {
            Value::String(s) if !s.trim().is_empty() => Some(server_text(s, r, max)),
            Value::Number(n) => Some(server_text(&n.to_string(), r, max)),
            _ => None,
        }
    };
    let name = |v: Option<&Value>| text(v, SHORT_TEXT);
    let fault = fields.get("fault");
    let code = name(fields.get("error"))
        .or_else(|| name(fields.get("ErrorCode")))
        .or_else(|| name(fields.get("errorCode")))
        .or_else(|| name(fault.and_then(|f| f.pointer("/detail/errorcode"))));
    let provider = ProviderError {
        description: text(fields.get("error_description"), MAX_TEXT)
            .or_else(|| text(fields.get("errorDescription"), MAX_TEXT))
            .or_else(|| text(fields.get("Error"), MAX_TEXT))
            .or_else(|| text(fault.and_then(|f| f.get("faultstring")), MAX_TEXT))
            .or_else(|| text(fields.get("message"), MAX_TEXT)),
        uri: text(fields.get("error_uri"), MAX_TEXT),
        error_codes: fields
            .get("error_codes")
            .and_then(Value::as_array)
            .map(|codes| codes.iter().filter_map(Value::as_i64).take(16).collect())
            .unwrap_or_default(),
        trace_id: name(fields.get("trace_id")),
        correlation_id: name(fields.get("correlation_id")),
        timestamp: name(fields.get("timestamp")),
        body_snippet: None,
    };
    let kind = kind_for(status, code.as_deref(), &provider.error_codes);
    let mut message = if status.is_success() {
        format!(
            "the token endpoint answered HTTP {} with an error",
            status.as_u16()
        )
    } else {
        format!("the token endpoint answered HTTP {}", status.as_u16())
    };
    if let Some(description) = &provider.description {
        message.push_str(": ");
        message.push_str(description);
    }
    let message = r.redact(&message).into_owned();
    let hint = match refused_scope(code.as_deref(), provider.description.as_deref()) {
        Some(scope) => Cow::Owned(format!(
            "the provider refused the scope `{scope}`; {}",
            hint(kind, code.as_deref(), status)
        )),
        None => Cow::Borrowed(hint(kind, code.as_deref(), status)),
    };
    let mut error = TokenError::new(kind, message)
        .with_status(status)
        .with_hint(hint);
    if let Some(code) = code {
        error = error.with_code(code);
    }
    for (name, value) in [
        ("trace_id", &provider.trace_id),
        ("correlation_id", &provider.correlation_id),
        ("timestamp", &provider.timestamp),
    ] {
        if let Some(value) = value {
            error = error.with_support_ref(name, value.clone());
        }
    }
    with_retry_after(error.with_detail(provider), headers, now)
}

/// The scope an `invalid_scope` answer's description names, in the providers' wordings:
/// Entra ID's "The scope X is not valid" and "The provided value for scope X is not valid",
/// Keycloak's "Invalid scopes: X". The description is already redacted and sanitised.
fn refused_scope(code: Option<&str>, description: Option<&str>) -> Option<String> {
    if !code.is_some_and(|c| c.trim().eq_ignore_ascii_case("invalid_scope")) {
        return None;
    }
    let description = description?;
    let lower = description.to_ascii_lowercase();
    let between = |start: &str, end: &str| -> Option<&str> {
        let from = lower.find(start)? + start.len();
        let to = from + lower[from..].find(end)?;
        Some(&description[from..to])
    };
    let scope = between("the scope ", " is not valid")
        .or_else(|| between("the provided value for scope ", " is not valid"))
        .or_else(|| {
            let from = lower.find("invalid scopes: ")? + "invalid scopes: ".len();
            Some(description[from..].trim_end_matches('.'))
        })?
        .trim()
        .trim_matches(|c| c == '\'' || c == '"' || c == '`');
    (!scope.is_empty()).then(|| crate::error::sanitize(scope))
}

/// The error kind: transient statuses first (they decide retries), then Entra ID's AADSTS
/// codes where they say more than the error code, then the error code, then the status.
fn kind_for(status: StatusCode, code: Option<&str>, aadsts: &[i64]) -> TokenErrorKind {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return TokenErrorKind::RateLimited;
    }
    if status.is_server_error() {
        return TokenErrorKind::Unavailable;
    }
    if let Some(kind) = aadsts.iter().find_map(|&c| kind_from_aadsts(c)) {
        return kind;
    }
    code.and_then(kind_from_code)
        .unwrap_or_else(|| kind_from_status(status))
}

/// Entra ID codes sent with a code whose kind would mislead: `unauthorized_client` for an
/// application that does not exist in the tenant (a wrong client id) or is disabled, and
/// `invalid_client` / `invalid_grant` variants that are plainly the credential.
fn kind_from_aadsts(code: i64) -> Option<TokenErrorKind> {
    use TokenErrorKind::*;
    match code {
        // Application not found in the tenant; application disabled.
        700016 | 7000112 => Some(CredentialsRejected),
        // Invalid client secret; expired client secret.
        7000215 | 7000222 => Some(CredentialsRejected),
        _ => None,
    }
}

/// RFC 6749 (§5.2, §4.1.2.1 for `access_denied`), RFC 8707 (`invalid_target`), RFC 8628
/// (`slow_down`) and Apigee's policy codes.
fn kind_from_code(code: &str) -> Option<TokenErrorKind> {
    use TokenErrorKind::*;
    let kind = match code.trim().to_ascii_lowercase().as_str() {
        "invalid_client" | "invalid_grant" => CredentialsRejected,
        "unauthorized_client" | "invalid_target" | "access_denied" => NotPermitted,
        // At the three providers an invalid scope is a scope written wrongly (not exactly
        // `<app-id-uri>/.default`, a name the API product does not know).
        "invalid_request" | "unsupported_grant_type" | "invalid_scope" => Configuration,
        "temporarily_unavailable" | "server_error" => Unavailable,
        "slow_down" => RateLimited,
        // Apigee policy error codes.
        "oauth.v2.invalidclientidentifier" | "oauth.v2.invalid_client" => CredentialsRejected,
        "oauth.v2.invalidapicallasnoapiproductmatchfound" => NotPermitted,
        "oauth.v2.unsupportedgranttype" | "oauth.v2.invalid_grant_type" => Configuration,
        "policies.ratelimit.quotaviolation" | "policies.ratelimit.spikearrestviolation" => {
            RateLimited
        }
        _ => return None,
    };
    Some(kind)
}

fn kind_from_status(status: StatusCode) -> TokenErrorKind {
    use TokenErrorKind::*;
    match status.as_u16() {
        300..=399 | 400 | 404 | 405 => Configuration,
        401 => CredentialsRejected,
        403 => NotPermitted,
        408 => Timeout,
        429 => RateLimited,
        500..=599 => Unavailable,
        200..=299 => MalformedAnswer,
        _ => Other,
    }
}

/// What to check: by the provider's code where it says more than the kind, else by kind, as the
/// providers' "common errors and fixes" say.
fn hint(kind: TokenErrorKind, code: Option<&str>, status: StatusCode) -> &'static str {
    use TokenErrorKind::*;
    let code = code.map(|c| c.trim().to_ascii_lowercase());
    match code.as_deref() {
        Some("invalid_scope") => {
            return "check the scope value: Entra ID-style providers need exactly one \
                    `<app-id-uri>/.default`";
        }
        Some("invalid_grant") => {
            return "the grant or client assertion was refused: check the assertion's `aud` (the \
                    token endpoint), `iss`/`sub` (the client id), `exp`, and the certificate \
                    thumbprint";
        }
        Some("invalid_target") => return "check the `resource` and `audience` values",
        Some("invalid_request") => {
            return "a parameter is missing or malformed: check where `grant_type` is sent (body \
                    or query), the scope format and the client authentication method";
        }
        Some(
            "unsupported_grant_type"
            | "oauth.v2.unsupportedgranttype"
            | "oauth.v2.invalid_grant_type",
        ) => {
            return "the endpoint does not accept client_credentials as sent: check the token URL \
                    and whether `grant_type` belongs in the body or the query string";
        }
        _ => {}
    }
    match kind {
        CredentialsRejected => {
            "check the client id and secret (or certificate): the credential may be wrong, \
             disabled or expired, or the provider may expect another client authentication \
             method (client_secret_post, client_secret_basic, private_key_jwt)"
        }
        NotPermitted => {
            "the client may not use this grant, scope or API: check its app role assignment, API \
             product and allow-listing with the provider"
        }
        RateLimited => {
            "too many token requests: share one cache (one layer) between clients of the same \
             credentials; the cache asks again only after the server's `Retry-After` (or its \
             backoff), and requests without a valid token fail at once until then"
        }
        Unavailable => {
            "the token endpoint failed or is down: check the provider's status; the cache asks \
             again after its backoff (or the server's `Retry-After`), and requests without a \
             valid token fail at once until then"
        }
        Timeout => "the token endpoint did not answer in time; check connectivity and timeouts",
        Configuration if status.is_redirection() => {
            "the token endpoint redirected, and redirects are not followed (the client secret \
             must not travel elsewhere): use the final token URL"
        }
        Configuration
            if status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED =>
        {
            "check the token URL (host, path, tenant)"
        }
        Configuration => {
            "the token endpoint did not accept the request as sent: check the token URL, the \
             scope and the client authentication method"
        }
        MalformedAnswer => {
            "the URL may point at something that is not a token endpoint (a login page, a \
             proxy): check the token URL"
        }
        _ => "see the provider's error description",
    }
}

fn with_retry_after(error: TokenError, headers: &HeaderMap, now: SystemTime) -> TokenError {
    match retry_after(headers, now) {
        Some(wait) => error.with_retry_after(wait),
        None => error,
    }
}

/// `Retry-After` as delta-seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn malformed(status: StatusCode, message: &'static str) -> TokenError {
    TokenError::new(TokenErrorKind::MalformedAnswer, message)
        .with_status(status)
        .with_hint(hint(TokenErrorKind::MalformedAnswer, None, status))
}

/// The start of a body that is not a JSON error. `body` is already redacted; what cutting,
/// decoding and folding make of it is redacted again.
fn snippet_only(body: &[u8], r: &Redactor) -> ProviderError {
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX_TEXT * 4)]);
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    ProviderError {
        body_snippet: (!collapsed.is_empty()).then(|| server_text(&collapsed, r, MAX_TEXT)),
        ..ProviderError::default()
    }
}

/// A number of seconds, as a JSON number or a numeric string; empty string or null: absent.
fn seconds(
    value: Option<&Value>,
    name: &str,
    status: StatusCode,
    r: &Redactor,
) -> Result<Option<Duration>, TokenError> {
    let bad = |what: &str| {
        Err(
            TokenError::new(TokenErrorKind::MalformedAnswer, format!("`{name}` {what}"))
                .with_status(status),
        )
    };
    let number = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => match s.trim().parse::<f64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return bad(&format!(
                    "is not a number: \"{}\"",
                    server_text(s, r, SHORT_TEXT)
                ));
            }
        },
        Some(_) => return bad("is neither a number nor a string"),
    };
    match number {
        Some(n) if n.is_finite() && n >= 0.0 => Ok(Some(
            Duration::try_from_secs_f64(n)
                .unwrap_or(MAX_LIFETIME)
                .min(MAX_LIFETIME),
        )),
        Some(n) if n.is_finite() => bad(&format!("is negative: {n}")),
        _ => bad("is not a finite number"),
    }
}

/// Epoch milliseconds, as a JSON number or a numeric string; empty string or null: absent.
fn millis(
    value: Option<&Value>,
    name: &str,
    status: StatusCode,
) -> Result<Option<u64>, TokenError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
        Some(Value::String(s)) if s.trim().parse::<u64>().is_ok() => Ok(s.trim().parse().ok()),
        Some(_) => Err(TokenError::new(
            TokenErrorKind::MalformedAnswer,
            format!("`{name}` is not a whole number of milliseconds"),
        )
        .with_status(status)),
    }
}

/// `scope` as a space-separated string (or, from some servers, an array); empty: absent.
fn scope(value: Option<&Value>) -> Option<String> {
    let scope = match value? {
        Value::String(s) => s.trim().to_owned(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        _ => return None,
    };
    (!scope.is_empty()).then_some(scope)
}

/// Server text for an error: secrets redacted, runs of whitespace folded to one space, then the
/// crate's one [`sanitize`](crate::error::sanitize_with) with room for `max` characters,
/// redacting again after the cut (a secret's start left where it was cut, or a secret made by
/// folding whitespace), before the ellipsis.
fn server_text(s: &str, r: &Redactor, max: usize) -> String {
    let s = r.redact(s);
    let folded = if s.contains(|c: char| c.is_whitespace() && c != ' ') {
        Cow::Owned(s.split_whitespace().collect::<Vec<_>>().join(" "))
    } else {
        s
    };
    sanitize_with(&folded, max, |cut| r.redact(&cut).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// A server that shortened its echo of the secret ("...Geheimnis-ü-2024-ab..."), and the
    /// crate's 300-character cut landing after the `ü`: the fragment of the secret the cut
    /// text ends in is redacted, non-ASCII character and all (found by a second reader).
    #[test]
    fn a_secret_fragment_cut_after_a_non_ascii_character_is_redacted() {
        let secret = "Geheimnis-\u{fc}-2024-abcdefgh";
        let r = Redactor::new().secret(secret);
        let kept = "Geheimnis-\u{fc}-20";
        let pad = "x".repeat(MAX_TEXT - kept.chars().count());
        let description = format!("{pad}Geheimnis-\u{fc}-2024-ab... (value shortened)");
        let body = serde_json::json!({"error": "invalid_client", "error_description": description});
        let err = parse_error_response_redacting(
            StatusCode::UNAUTHORIZED,
            &HeaderMap::new(),
            body.to_string().as_bytes(),
            SystemTime::now(),
            &r,
        );
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("Geheimnis"), "{shown}");
    }

    const DAY: Duration = Duration::from_secs(86_400);

    fn parse(status: u16, body: &str) -> Result<Token, TokenError> {
        parse_at(status, body, SystemTime::now())
    }

    fn parse_at(status: u16, body: &str, now: SystemTime) -> Result<Token, TokenError> {
        parse_token_response(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body.as_bytes(),
            Instant::now(),
            now,
            Duration::from_secs(600),
        )
    }

    fn kind(status: u16, body: &str) -> TokenErrorKind {
        parse(status, body).unwrap_err().kind()
    }

    #[test]
    fn rfc6749_response() {
        let t = parse(
            200,
            r#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"bearer","expires_in":3600,"example_parameter":"example_value"}"#,
        )
        .unwrap();
        assert_eq!(t.token_type(), "Bearer");
        assert_eq!(t.lifetime(), Some(Duration::from_secs(3600)));
        assert_eq!(t.extra()["example_parameter"], "example_value");
        assert!(!t.extra().contains_key("access_token"));
    }

    #[test]
    fn screening_eagle_response_keeps_id_and_refresh_tokens() {
        let t = parse(
            200,
            r#"{"scope":"openid email profile inspect","token_type":"Bearer","access_token":"eyJ.a.b","expires_in":604800,"id_token":"eyJ.c.d","refresh_token":"eyJ.e.f"}"#,
        )
        .unwrap();
        assert_eq!(t.scope(), Some("openid email profile inspect"));
        assert!(t.id_token().is_some() && t.refresh_token().is_some());
        assert_eq!(t.lifetime(), Some(Duration::from_secs(604_800)));
    }

    #[test]
    fn apigee_issued_at_is_honoured() {
        let issued = UNIX_EPOCH + Duration::from_millis(1_587_458_037_687);
        let body = r#"{"token_type":"BearerToken","issued_at":"1587458037687","access_token":"staG765sBUuai4OMeZiTful6PTRt","expires_in":"3599","refresh_count":"0"}"#;
        // Received 10 minutes after it was issued: 10 minutes less to live.
        let t = parse_at(200, body, issued + Duration::from_secs(600)).unwrap();
        assert_eq!(t.lifetime(), Some(Duration::from_secs(2999)));
        // A clock that says it expired long ago disagrees with the server's: trust expires_in.
        let t = parse_at(200, body, issued + DAY).unwrap();
        assert_eq!(t.lifetime(), Some(Duration::from_secs(3599)));
        // Our clock behind the server's: never more than expires_in.
        let t = parse_at(200, body, issued - Duration::from_secs(60)).unwrap();
        assert_eq!(t.lifetime(), Some(Duration::from_secs(3599)));
        assert_eq!(t.extra()["refresh_count"], "0");
    }

    #[test]
    fn expires_in_shapes() {
        let with = |v: &str| {
            parse(
                200,
                &format!(r#"{{"access_token":"t","token_type":"Bearer","expires_in":{v}}}"#),
            )
        };
        assert_eq!(
            with("3600").unwrap().lifetime(),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            with("\"3600\"").unwrap().lifetime(),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            with("\" 60 \"").unwrap().lifetime(),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            with("59.5").unwrap().lifetime(),
            Some(Duration::from_millis(59_500))
        );
        // Empty string and null mean absent: the default lifetime, never "forever".
        assert_eq!(
            with("\"\"").unwrap().lifetime(),
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            with("null").unwrap().lifetime(),
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            parse(200, r#"{"access_token":"t"}"#).unwrap().lifetime(),
            Some(Duration::from_secs(600))
        );
        assert_eq!(with("0").unwrap().lifetime(), Some(Duration::ZERO));
        assert_eq!(with("1e300").unwrap().lifetime(), Some(MAX_LIFETIME));
        assert_eq!(
            with("18446744073709551615").unwrap().lifetime(),
            Some(MAX_LIFETIME)
        );
        for bad in ["-1", "\"-5\"", "\"soon\"", "true", "[1]"] {
            let err = with(bad).unwrap_err();
            assert_eq!(err.kind(), TokenErrorKind::MalformedAnswer, "{bad}");
            assert!(err.to_string().contains("expires_in"), "{err}");
        }
    }

    #[test]
    fn access_token_must_be_a_usable_string() {
        assert_eq!(
            kind(200, r#"{"token_type":"Bearer"}"#),
            TokenErrorKind::MalformedAnswer
        );
        assert_eq!(
            kind(200, r#"{"access_token":""}"#),
            TokenErrorKind::MalformedAnswer
        );
        assert_eq!(
            kind(200, r#"{"access_token":null}"#),
            TokenErrorKind::MalformedAnswer
        );
        assert_eq!(
            kind(200, r#"{"access_token":42}"#),
            TokenErrorKind::MalformedAnswer
        );
        let err = parse(200, r#"{"access_token":"abc\r\nX-Injected: 1"}"#).unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::MalformedAnswer);
        assert!(!err.to_string().contains("X-Injected"));
        assert_eq!(
            kind(200, r#"{"access_token":"tökén"}"#),
            TokenErrorKind::MalformedAnswer
        );
    }

    #[test]
    fn token_types() {
        for ok in ["Bearer", "bearer", "BEARER", "BearerToken", "bearertoken"] {
            let body = format!(r#"{{"access_token":"t","token_type":"{ok}"}}"#);
            assert!(parse(200, &body).unwrap().is_bearer(), "{ok}");
        }
        let err = parse(200, r#"{"access_token":"t","token_type":"DPoP"}"#).unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::MalformedAnswer);
        assert!(err.to_string().contains("`DPoP`"));
    }

    #[test]
    fn a_200_with_an_error_is_an_error() {
        let err = parse(
            200,
            r#"{"error":"invalid_client","error_description":"nope"}"#,
        )
        .unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::CredentialsRejected);
        assert_eq!(err.code(), Some("invalid_client"));
        assert!(err.to_string().contains("HTTP 200 with an error"));
    }

    #[test]
    fn not_json_on_200_is_malformed_with_a_snippet() {
        let err = parse(200, "<html>\n<body>Sign in</body></html>").unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::MalformedAnswer);
        let snippet = said(&err).body_snippet.as_deref().unwrap();
        assert_eq!(snippet, "<html> <body>Sign in</body></html>");
        assert_eq!(err.code(), None);
    }

    #[test]
    fn scope_shapes() {
        let s = |v: &str| parse(200, &format!(r#"{{"access_token":"t","scope":{v}}}"#)).unwrap();
        assert_eq!(s(r#""a b""#).scope(), Some("a b"));
        assert_eq!(s(r#""""#).scope(), None);
        assert_eq!(s(r#"["a","b"]"#).scope(), Some("a b"));
    }

    fn said(err: &TokenError) -> &ProviderError {
        err.detail::<ProviderError>().unwrap()
    }

    fn error(status: u16, body: &str) -> TokenError {
        parse_error_response(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body.as_bytes(),
            SystemTime::now(),
        )
    }

    #[test]
    fn invalid_scope_names_the_refused_scope_when_the_provider_does() {
        // Entra ID's wordings (AADSTS70011 with the scope, AADSTS1002012) and Keycloak's.
        for (description, scope) in [
            (
                "AADSTS70011: The provided value for the input parameter 'scope' is not valid. \
                 The scope api://kontrolle-plus/read openid is not valid.",
                "api://kontrolle-plus/read openid",
            ),
            (
                "AADSTS1002012: The provided value for scope api://kontrolle-plus is not valid. \
                 Client credential flows must have a scope value with /.default suffixed to the \
                 resource identifier (application ID URI).",
                "api://kontrolle-plus",
            ),
            ("Invalid scopes: inspect admin", "inspect admin"),
        ] {
            let body =
                serde_json::json!({"error": "invalid_scope", "error_description": description});
            let err = error(400, &body.to_string());
            let hint = err.hint().unwrap();
            assert!(
                hint.starts_with(&format!("the provider refused the scope `{scope}`; ")),
                "{hint}"
            );
            assert!(hint.contains("<app-id-uri>/.default"), "{hint}");
        }
        // A description that names no scope: the hint as before, naming none.
        let err = error(
            400,
            r#"{"error":"invalid_scope","error_description":"AADSTS70011: The provided value for the input parameter 'scope' is not valid."}"#,
        );
        assert!(
            err.hint().unwrap().starts_with("check the scope value"),
            "{err}"
        );
        // Another code's description is not read for a scope.
        let err = error(
            400,
            r#"{"error":"invalid_request","error_description":"The scope x is not valid."}"#,
        );
        assert!(!err.hint().unwrap().contains("refused the scope"), "{err}");
    }

    #[test]
    fn an_empty_token_is_not_blamed_on_a_login_page() {
        let err = parse(200, r#"{"access_token":"","token_type":"Bearer"}"#).unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::MalformedAnswer);
        assert!(err.message().contains("`access_token` is empty"), "{err}");
        let hint = err.hint().unwrap();
        assert!(!hint.contains("login page"), "{hint}");
        assert!(hint.contains("issued no token"), "{hint}");
    }

    #[test]
    fn unavailable_and_rate_limited_hints_do_not_promise_a_retry_of_the_request() {
        for (status, body) in [(503, ""), (500, r#"{"error":"server_error"}"#), (429, "")] {
            let err = error(status, body);
            let hint = err.hint().unwrap();
            assert!(!hint.contains("request is retried"), "{status}: {hint}");
            assert!(hint.contains("fail at once until then"), "{status}: {hint}");
        }
    }

    #[test]
    fn entra_error_keeps_support_fields() {
        let err = error(
            400,
            r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215],"timestamp":"2026-11-23 10:00:00Z","trace_id":"t-1","correlation_id":"c-1","error_uri":"https://login.example/error?code=7000215"}"#,
        );
        assert_eq!(err.kind(), TokenErrorKind::CredentialsRejected);
        assert_eq!(err.code(), Some("invalid_client"));
        assert_eq!(
            err.support_refs().collect::<Vec<_>>(),
            [
                ("trace_id", "t-1"),
                ("correlation_id", "c-1"),
                ("timestamp", "2026-11-23 10:00:00Z")
            ]
        );
        let p = said(&err);
        assert_eq!(p.error_codes, [7_000_215]);
        assert_eq!(p.trace_id.as_deref(), Some("t-1"));
        assert!(p.uri.as_deref().unwrap().contains("7000215"));
        let text = err.to_string();
        assert!(
            text.starts_with(
                "token error (credentials_rejected: invalid_client, HTTP 400): the token \
                 endpoint answered HTTP 400: AADSTS7000215: Invalid client secret provided. \
                 [trace_id=t-1, correlation_id=c-1, timestamp=2026-11-23 10:00:00Z]"
            ),
            "{text}"
        );
        assert!(text.contains("trace_id=t-1, correlation_id=c-1"), "{text}");
        assert!(
            text.contains("hint: check the client id and secret"),
            "{text}"
        );
    }

    #[test]
    fn screening_eagle_camel_case_error() {
        let err = error(
            401,
            r#"{"error":"Forbidden","errorDescription":"permission denied"}"#,
        );
        assert_eq!(err.kind(), TokenErrorKind::CredentialsRejected);
        assert_eq!(err.code(), Some("Forbidden"));
        assert_eq!(said(&err).description.as_deref(), Some("permission denied"));
        for (status, kind) in [
            (302, TokenErrorKind::Configuration),
            (400, TokenErrorKind::Configuration),
            (403, TokenErrorKind::NotPermitted),
            (404, TokenErrorKind::Configuration),
            (500, TokenErrorKind::Unavailable),
        ] {
            let err = error(
                status,
                r#"{"error":"Forbidden","errorDescription":"permission denied"}"#,
            );
            assert_eq!(err.kind(), kind, "{status}");
        }
    }

    #[test]
    fn apigee_error_shapes() {
        let err = error(
            401,
            r#"{"ErrorCode":"invalid_client","Error":"Client credentials are invalid"}"#,
        );
        assert_eq!(err.kind(), TokenErrorKind::CredentialsRejected);
        assert_eq!(
            said(&err).description.as_deref(),
            Some("Client credentials are invalid")
        );
        let err = error(
            401,
            r#"{"fault":{"faultstring":"Invalid client identifier {0}","detail":{"errorcode":"oauth.v2.InvalidClientIdentifier"}}}"#,
        );
        assert_eq!(err.kind(), TokenErrorKind::CredentialsRejected);
        assert_eq!(err.code(), Some("oauth.v2.InvalidClientIdentifier"));
        let err = error(
            401,
            r#"{"fault":{"faultstring":"no product","detail":{"errorcode":"oauth.v2.InvalidApiCallAsNoApiProductMatchFound"}}}"#,
        );
        assert_eq!(err.kind(), TokenErrorKind::NotPermitted);
        let err = error(
            429,
            r#"{"fault":{"faultstring":"Spike arrest violation","detail":{"errorcode":"policies.ratelimit.SpikeArrestViolation"}}}"#,
        );
        assert_eq!(err.kind(), TokenErrorKind::RateLimited);
        assert!(err.kind().is_transient());
    }

    #[test]
    fn entra_codes_refine_the_kind() {
        // A wrong client id: Entra ID says `unauthorized_client`, with AADSTS700016.
        let err = error(
            400,
            r#"{"error":"unauthorized_client","error_description":"AADSTS700016: Application with identifier 'x' was not found in the directory.","error_codes":[700016]}"#,
        );
        assert_eq!(err.kind(), TokenErrorKind::CredentialsRejected);
        assert_eq!(err.code(), Some("unauthorized_client"));
        let err = error(
            400,
            r#"{"error":"unauthorized_client","error_codes":[7000112]}"#,
        );
        assert_eq!(err.kind(), TokenErrorKind::CredentialsRejected);
        // Without such a code, the code decides.
        let err = error(
            400,
            r#"{"error":"unauthorized_client","error_codes":[501051]}"#,
        );
        assert_eq!(err.kind(), TokenErrorKind::NotPermitted);
        // A transient status still wins: it decides retries.
        let err = error(
            503,
            r#"{"error":"unauthorized_client","error_codes":[700016]}"#,
        );
        assert_eq!(err.kind(), TokenErrorKind::Unavailable);
    }

    #[test]
    fn rfc6749_codes_map_to_kinds() {
        use TokenErrorKind::*;
        for (code, kind, hint) in [
            (
                "invalid_client",
                CredentialsRejected,
                "client id and secret",
            ),
            ("invalid_grant", CredentialsRejected, "client assertion"),
            ("invalid_scope", Configuration, "scope value"),
            ("unauthorized_client", NotPermitted, "app role"),
            ("invalid_target", NotPermitted, "`resource`"),
            ("access_denied", NotPermitted, "app role"),
            ("invalid_request", Configuration, "missing or malformed"),
            ("unsupported_grant_type", Configuration, "query string"),
            ("slow_down", RateLimited, "Retry-After"),
            ("temporarily_unavailable", Unavailable, "backoff"),
            ("server_error", Unavailable, "backoff"),
            ("no_such_code", Configuration, "the token URL"),
        ] {
            let err = error(400, &format!(r#"{{"error":"{code}"}}"#));
            assert_eq!(err.kind(), kind, "{code}");
            // The provider's own code is kept, and shown after the kind.
            assert_eq!(err.code(), Some(code));
            assert!(
                err.to_string()
                    .starts_with(&format!("token error ({kind}: {code}, HTTP 400)")),
                "{err}"
            );
            assert!(err.hint().unwrap().contains(hint), "{code}: {err}");
        }
        // A code is a name: short, visible ASCII.
        let err = error(
            400,
            &format!(r#"{{"error":"bad\u001b[2J{}"}}"#, "é".repeat(100)),
        );
        let code = err.code().unwrap();
        assert_eq!(code, format!("bad?[2J{}…", "?".repeat(SHORT_TEXT - 7)));
        // Transient statuses win over codes: they decide retries.
        let err = error(503, r#"{"error":"invalid_request"}"#);
        assert_eq!(err.kind(), Unavailable);
        assert_eq!(err.code(), Some("invalid_request"));
        assert_eq!(
            error(429, r#"{"error":"invalid_client"}"#).kind(),
            RateLimited
        );
    }

    #[test]
    fn non_json_errors_keep_a_short_sanitised_snippet() {
        let body = format!(
            "<html><h1>502 Bad Gateway</h1>\u{1b}[31m{}</html>",
            "x".repeat(5000)
        );
        let err = error(502, &body);
        assert_eq!(err.kind(), TokenErrorKind::Unavailable);
        let snippet = said(&err).body_snippet.clone().unwrap();
        assert!(snippet.starts_with("<html><h1>502 Bad Gateway</h1>"));
        assert!(!snippet.contains('\u{1b}'));
        assert!(snippet.chars().count() <= MAX_TEXT + 1);
        assert!(said(&error(500, "")).body_snippet.is_none());
    }

    const ECHOED: &str = "Q3h8Q~Zt2 s/e+c\"r&t";

    /// The forms a server echoes a secret in: raw, form-encoded, percent-encoded, JSON-escaped,
    /// base64 (both alphabets, padded or not).
    fn echoed_forms() -> Vec<String> {
        use base64::Engine;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let form: String = form_urlencoded::byte_serialize(ECHOED.as_bytes()).collect();
        let percent = form.replace('+', "%20").replace('~', "%7E");
        let json = serde_json::to_string(ECHOED).unwrap();
        vec![
            ECHOED.to_owned(),
            form,
            percent,
            json[1..json.len() - 1].replace('/', "\\/"),
            STANDARD.encode(ECHOED),
            URL_SAFE_NO_PAD.encode(ECHOED),
        ]
    }

    /// Every way the error can be shown, for a check that no part of a form is in it.
    fn shown(err: &TokenError) -> String {
        format!("{err} {err:?} {err:#?}")
    }

    fn assert_no_form(shown: &str) {
        for form in echoed_forms() {
            for len in 4..=form.len() {
                if let Some(part) = form.get(..len) {
                    assert!(!shown.contains(part), "{part:?} is in:\n{shown}");
                }
            }
        }
    }

    fn redactor() -> Redactor {
        Redactor::new().basic_credentials("client-id", ECHOED)
    }

    /// Parses a token endpoint's answer with the test secrets' redactor.
    fn parse_redacting(status: StatusCode, body: &[u8]) -> Result<Token, TokenError> {
        parse_token_response_redacting(
            status,
            &HeaderMap::new(),
            body,
            Instant::now(),
            SystemTime::now(),
            DAY,
            &redactor(),
        )
    }

    #[test]
    fn an_echoed_secret_is_redacted_in_every_form_from_json_errors() {
        for form in echoed_forms() {
            let description = serde_json::to_string(&format!("bad secret {form} for client-id"))
                .unwrap()
                .replace('/', "\\/");
            let body = format!(r#"{{"error":"invalid_client","error_description":{description}}}"#);
            for status in [401, 200] {
                let err = parse_redacting(StatusCode::from_u16(status).unwrap(), body.as_bytes())
                    .unwrap_err();
                let shown = shown(&err);
                assert_no_form(&shown);
                assert!(shown.contains("bad secret [redacted]"), "{form}: {shown}");
                assert_eq!(err.kind(), TokenErrorKind::CredentialsRejected);
            }
        }
    }

    #[test]
    fn an_echoed_secret_is_redacted_in_every_form_from_other_bodies() {
        for form in echoed_forms() {
            let body = format!("<html>\n<pre>POST /token\nclient_secret={form}&scope=x</pre>");
            for status in [400, 200] {
                let err = parse_redacting(StatusCode::from_u16(status).unwrap(), body.as_bytes())
                    .unwrap_err();
                let shown = shown(&err);
                assert_no_form(&shown);
                // Base64 padding may stay: it says nothing.
                let shown = shown.replace("[redacted]==", "[redacted]");
                let shown = shown.replace("[redacted]=", "[redacted]");
                assert!(
                    shown.contains("client_secret=[redacted]&scope=x"),
                    "{shown}"
                );
            }
        }
    }

    #[test]
    fn an_echoed_secret_is_redacted_from_the_code_support_refs_and_detail() {
        for form in echoed_forms() {
            let json = |s: &str| serde_json::to_string(s).unwrap();
            let body = format!(
                r#"{{"error":{},"error_description":"d","error_uri":{},"trace_id":{},"correlation_id":"c-1"}}"#,
                json(&format!("x{form}")),
                json(&format!("https://e.example/?s={form}")),
                json(&format!("t-{form}")),
            );
            let err = parse_redacting(StatusCode::BAD_REQUEST, body.as_bytes()).unwrap_err();
            assert_no_form(&shown(&err));
            // (Base64 padding, which says nothing, may stay.)
            assert!(err.code().unwrap().starts_with("x[redacted]"), "{err}");
            let p = said(&err);
            assert!(p.uri.as_deref().unwrap().contains("s=[redacted]"), "{p:?}");
            assert!(p.trace_id.as_deref().unwrap().starts_with("t-[redacted]"));
            assert!(
                err.support_refs()
                    .any(|(name, value)| name == "trace_id" && value.starts_with("t-[redacted]"))
            );

            // What the client does with an error read without the redactor (a transport's, a
            // hook's): every text of it, the detail's too, is redacted afterwards.
            let raw = error(400, &body);
            assert!(shown(&raw).contains(&form[..4]));
            let redacted = raw.redact(&redactor());
            assert_no_form(&shown(&redacted));
            assert!(
                redacted.code().unwrap().starts_with("x[redacted]"),
                "{redacted}"
            );
            let trace_id = said(&redacted).trace_id.as_deref().unwrap();
            assert!(trace_id.starts_with("t-[redacted]"), "{trace_id}");
        }
    }

    #[test]
    fn an_echoed_basic_header_is_redacted_in_both_encodings() {
        use base64::Engine;
        use base64::engine::general_purpose::STANDARD;
        let form = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        for joined in [
            format!("client-id:{ECHOED}"),
            format!("{}:{}", form("client-id"), form(ECHOED)),
        ] {
            let header = STANDARD.encode(&joined);
            let body = format!(
                r#"{{"error":"invalid_client","error_description":"got Authorization: Basic {header}"}}"#
            );
            let err = parse_error_response_redacting(
                StatusCode::UNAUTHORIZED,
                &HeaderMap::new(),
                body.as_bytes(),
                SystemTime::now(),
                &redactor(),
            );
            let shown = shown(&err);
            assert_no_form(&shown);
            assert!(!shown.contains(&header[..8]), "{shown}");
            assert!(shown.contains("Basic [redacted]"), "{shown}");
        }
    }

    #[test]
    fn a_secret_cut_short_by_the_server_or_at_the_limit_is_redacted() {
        for form in echoed_forms() {
            for at in [MAX_TEXT - 4, MAX_TEXT - 7, MAX_TEXT - 11] {
                // The server's echo stops inside the secret; our cut falls there too.
                let cut: String = form.chars().take(12).collect();
                let text = format!("{}{cut}", "x".repeat(at));
                let json = serde_json::to_string(&text).unwrap();
                for body in [
                    format!(r#"{{"error":"invalid_request","error_description":{json}}}"#),
                    text.clone(),
                    format!("{text} and what came after"),
                ] {
                    let err = parse_error_response_redacting(
                        StatusCode::BAD_REQUEST,
                        &HeaderMap::new(),
                        body.as_bytes(),
                        SystemTime::now(),
                        &redactor(),
                    );
                    assert_no_form(&shown(&err));
                }
            }
        }
    }

    #[test]
    fn a_redaction_at_the_cut_is_kept_whole() {
        for at in MAX_TEXT - 9..MAX_TEXT {
            let text = format!("{}{ECHOED} and more", "x".repeat(at));
            let cut = server_text(&text, &redactor(), MAX_TEXT);
            assert!(cut.ends_with("x[redacted]…"), "{at}: {cut}");
        }
        let text = format!("{}{ECHOED} and more", "x".repeat(MAX_TEXT));
        assert!(server_text(&text, &redactor(), MAX_TEXT).ends_with("xx…"));
    }

    #[test]
    fn an_echoed_secret_in_a_token_answer_field_is_redacted() {
        let err = parse_token_response_redacting(
            StatusCode::OK,
            &HeaderMap::new(),
            br#"{"access_token":"t","token_type":"Q3h8Q~Zt2 s/e+c\"r&t","expires_in":"Q3h8Q~Zt2"}"#,
            Instant::now(),
            SystemTime::now(),
            DAY,
            &redactor(),
        )
        .unwrap_err();
        assert_no_form(&shown(&err));
        let err = parse_token_response_redacting(
            StatusCode::OK,
            &HeaderMap::new(),
            br#"{"access_token":"t","expires_in":"Q3h8Q~Zt2 s/e+c\"r&t"}"#,
            Instant::now(),
            SystemTime::now(),
            DAY,
            &redactor(),
        )
        .unwrap_err();
        assert_no_form(&shown(&err));
        assert!(err.to_string().contains("[redacted]"), "{err}");
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(2_000))]

        /// As the fuzz targets check it: wherever a form of the secret is put into any body, no
        /// form of it is in what the error shows.
        #[test]
        fn no_form_of_the_secret_is_ever_shown(
            status in 200u16..600,
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::string::string_regex(r#"[ -~\n\t]{0,40}"#).unwrap(),
                    proptest::prop_oneof![
                        proptest::strategy::Just(r#"{"error":"invalid_client","error_description":""#.to_owned()),
                        proptest::strategy::Just(r#"","trace_id":""#.to_owned()),
                        proptest::strategy::Just(r#""}"#.to_owned()),
                        proptest::strategy::Just("x".repeat(290)),
                    ],
                    (0..6usize).prop_map(|i| echoed_forms()[i].clone()),
                    (0..6usize, 1..20usize).prop_map(|(i, n)| echoed_forms()[i].chars().take(n).collect()),
                ],
                0..12,
            ),
        ) {
            let body = parts.concat();
            let result = parse_redacting(StatusCode::from_u16(status).unwrap(), body.as_bytes());
            if let Err(err) = result {
                let shown = format!("{err} {err:?}");
                for form in echoed_forms() {
                    proptest::prop_assert!(!shown.contains(&form), "{} in {}", form, shown);
                }
            }
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::now();
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("120"));
        let err = parse_error_response(StatusCode::TOO_MANY_REQUESTS, &headers, b"", now);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(300));
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let wait = retry_after(&headers, now).unwrap();
        assert!(wait <= Duration::from_secs(300) && wait >= Duration::from_secs(298));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers, now), None);
    }
}
