//! The emulator's HTTP side: routing, the three token endpoints, their issuers' metadata, the
//! protected API, faults.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::{Fault, Issued, Provider, State, TokenCheck, index};

type Answer = Response<Full<Bytes>>;

/// Accepts connections until told to stop; dropping the `JoinSet` ends open connections.
pub(super) async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    state: Arc<State>,
    mut stop: oneshot::Receiver<()>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = Arc::clone(&state);
                let acceptor = acceptor.clone();
                connections.spawn(async move {
                    match acceptor {
                        Some(acceptor) => {
                            // A client that refuses our certificate ends here.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                connection(stream, state).await;
                            }
                        }
                        None => connection(stream, state).await,
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn connection<I>(io: I, state: Arc<State>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let state = Arc::clone(&state);
        async move { handle(&state, req).await }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// Why a connection is closed without an answer ([`Fault::Drop`]).
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

async fn handle(state: &State, req: Request<Incoming>) -> Result<Answer, Dropped> {
    let path = req.uri().path().to_owned();
    if let Some(rest) = path.strip_prefix("/api/") {
        return Ok(api(state, rest, &req));
    }
    let tenant = lock(&state.config).tenant.clone();
    if let Some(provider) = metadata_of(&path, &tenant) {
        return metadata(state, provider, &req).await;
    }
    let provider = if path == format!("/kontrolle/{tenant}/oauth2/v2.0/token") {
        Provider::KontrollePlus
    } else if path == format!("/screening-eagle{}", crate::SCREENING_EAGLE_TOKEN_PATH) {
        Provider::ScreeningEagle
    } else if path == "/kpn/oauth/client_credential/accesstoken" {
        Provider::Kpn
    } else {
        return Ok(plain(StatusCode::NOT_FOUND, "not found"));
    };
    state.token_requests[index(provider)].fetch_add(1, Ordering::SeqCst);
    // The fault is this request's from the start, even if its client goes away during the
    // delay below.
    let fault = lock(&state.faults)
        .get_mut(&provider)
        .and_then(|queue| queue.pop_front());
    let delay = lock(&state.config).token_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(answer) = apply(fault).await {
        return answer;
    }
    if req.method() != Method::POST {
        return Ok(plain(StatusCode::METHOD_NOT_ALLOWED, "use POST"));
    }
    let query = req.uri().query().unwrap_or_default().to_owned();
    let authorization = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Ok(body) = Limited::new(req.into_body(), 64 * 1024).collect().await else {
        return Ok(plain(StatusCode::BAD_REQUEST, "unreadable body"));
    };
    let form: Vec<(String, String)> = form_urlencoded::parse(&body.to_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    for (name, value) in &form {
        match name.as_str() {
            "client_secret" => super::observed("client_secret (received)", value),
            "client_assertion" => super::observed("client_assertion (received)", value),
            _ => {}
        }
    }
    if let Some(basic) = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Basic "))
    {
        super::observed("basic credentials (received)", basic);
        if let Some((_, secret)) = STANDARD
            .decode(basic)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .as_deref()
            .and_then(|c| c.split_once(':'))
        {
            super::observed("client_secret (received)", secret);
            // Sent form-urlencoded (RFC 6749 §2.3.1), the secret itself is the decoded value.
            let decoded: String = form_urlencoded::parse(secret.as_bytes())
                .map(|(k, _)| k.into_owned())
                .collect::<Vec<_>>()
                .join("&");
            super::observed("client_secret (received)", &decoded);
        }
    }
    let request = TokenRequest {
        form,
        query,
        authorization,
    };
    Ok(match provider {
        Provider::KontrollePlus => kontrolle(state, &request),
        Provider::ScreeningEagle => screening_eagle(state, &request),
        Provider::Kpn => kpn(state, &request),
    })
}

/// The answer a fault makes instead of the normal one, after any delay it asks for; `None`
/// to answer normally.
async fn apply(fault: Option<Fault>) -> Option<Result<Answer, Dropped>> {
    match fault? {
        Fault::Delay(delay) => {
            tokio::time::sleep(delay).await;
            None
        }
        Fault::Status {
            status,
            retry_after,
            body,
        } => {
            let mut answer = json_answer(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                body,
            );
            if let Some(seconds) = retry_after {
                answer
                    .headers_mut()
                    .insert(RETRY_AFTER, seconds.to_string().parse().expect("digits"));
            }
            Some(Ok(answer))
        }
        Fault::Body(body) => Some(Ok(json_answer(StatusCode::OK, body))),
        Fault::Huge(size) => Some(Ok(json_answer(StatusCode::OK, "x".repeat(size)))),
        Fault::Drop => Some(Err(Dropped)),
        Fault::Hang => std::future::pending().await,
    }
}

/// The provider whose issuer's metadata `path` asks for: Kontrolle+'s and KPN's at the RFC 8414
/// URL (the well-known suffix before the issuer's path), Screening Eagle ID's only at the
/// OpenID Connect one (after it).
fn metadata_of(path: &str, tenant: &str) -> Option<Provider> {
    const OAUTH: &str = "/.well-known/oauth-authorization-server";
    if path == format!("{OAUTH}/kontrolle/{tenant}") {
        Some(Provider::KontrollePlus)
    } else if path == format!("{OAUTH}/kpn") {
        Some(Provider::Kpn)
    } else if path == "/screening-eagle/.well-known/openid-configuration" {
        Some(Provider::ScreeningEagle)
    } else {
        None
    }
}

/// An issuer's metadata (RFC 8414 §2): its issuer, token endpoint and the client
/// authentication methods that endpoint takes.
async fn metadata(
    state: &State,
    provider: Provider,
    req: &Request<Incoming>,
) -> Result<Answer, Dropped> {
    state.metadata_requests[index(provider)].fetch_add(1, Ordering::SeqCst);
    let fault = lock(&state.metadata_faults)
        .get_mut(&provider)
        .and_then(|queue| queue.pop_front());
    if let Some(answer) = apply(fault).await {
        return answer;
    }
    if req.method() != Method::GET {
        return Ok(plain(StatusCode::METHOD_NOT_ALLOWED, "use GET"));
    }
    let tenant = lock(&state.config).tenant.clone();
    let base = &state.base;
    let (issuer, token_endpoint, methods) = match provider {
        Provider::KontrollePlus => (
            format!("{base}/kontrolle/{tenant}"),
            format!("{base}/kontrolle/{tenant}/oauth2/v2.0/token"),
            json!(["client_secret_post", "private_key_jwt"]),
        ),
        Provider::ScreeningEagle => (
            format!("{base}/screening-eagle"),
            format!(
                "{base}/screening-eagle{}",
                crate::SCREENING_EAGLE_TOKEN_PATH
            ),
            json!(["client_secret_basic"]),
        ),
        Provider::Kpn => (
            format!("{base}/kpn"),
            format!("{base}/kpn/oauth/client_credential/accesstoken?grant_type=client_credentials"),
            json!(["client_secret_post"]),
        ),
    };
    Ok(json_answer(
        StatusCode::OK,
        json!({
            "issuer": issuer,
            "token_endpoint": token_endpoint,
            "token_endpoint_auth_methods_supported": methods,
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": ["token"],
        })
        .to_string(),
    ))
}

struct TokenRequest {
    form: Vec<(String, String)>,
    query: String,
    authorization: Option<String>,
}

impl TokenRequest {
    fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn kontrolle(state: &State, req: &TokenRequest) -> Answer {
    let config = lock(&state.config).clone();
    let entra_error = |code: &str, aadsts: u32, description: &str| {
        json_answer(
            StatusCode::BAD_REQUEST,
            json!({
                "error": code,
                "error_description": format!("AADSTS{aadsts}: {description}"),
                "error_codes": [aadsts],
                "timestamp": httpdate::fmt_http_date(SystemTime::now()),
                "trace_id": random_id(),
                "correlation_id": random_id(),
                "error_uri": format!("https://login.emulator/error?code={aadsts}"),
            })
            .to_string(),
        )
    };
    match req.field("grant_type") {
        None => {
            return entra_error(
                "invalid_request",
                900_144,
                "The request body must contain the following parameter: 'grant_type'.",
            );
        }
        Some("client_credentials") => {}
        Some(_) => {
            return entra_error(
                "unsupported_grant_type",
                70_003,
                "The app requested an unsupported grant type.",
            );
        }
    }
    if req.authorization.is_some() {
        return entra_error(
            "invalid_client",
            7_000_218,
            "The request body must contain 'client_assertion' or 'client_secret'; send the secret in the form body.",
        );
    }
    let client_ok = match (req.field("client_assertion"), req.field("client_secret")) {
        (Some(assertion), _) => {
            let token_url = format!(
                "{}/kontrolle/{}/oauth2/v2.0/token",
                state.base, config.tenant
            );
            req.field("client_assertion_type")
                == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
                && req.field("client_id") == Some(config.client_id.as_str())
                && assertion_ok(assertion, &config.client_id, &token_url)
        }
        (None, Some(secret)) => {
            req.field("client_id") == Some(config.client_id.as_str())
                && secret == config.client_secret
        }
        (None, None) => false,
    };
    if !client_ok {
        return entra_error(
            "invalid_client",
            7_000_215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value.",
        );
    }
    if req.field("scope") != Some(&format!("{}/.default", config.app_id_uri)) {
        return entra_error(
            "invalid_scope",
            70_011,
            "The provided value for the input parameter 'scope' is not valid.",
        );
    }
    let lifetime = config.token_lifetime.as_secs();
    let token = jwt(json!({
        "aud": config.app_id_uri,
        "iss": format!("https://sts.emulator/{}/", config.tenant),
        "iat": unix_now(),
        "nbf": unix_now(),
        "exp": unix_now() + lifetime,
        "appid": config.client_id,
        "sub": config.client_id,
        "tid": config.tenant,
        "roles": config.roles,
    }));
    issue(
        state,
        &token,
        Provider::KontrollePlus,
        &config.app_id_uri,
        &config.roles,
        &config,
    );
    json_answer(
        StatusCode::OK,
        json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        })
        .to_string(),
    )
}

/// RFC 7523 checks of a client assertion's claims: `iss` = `sub` = client id, `aud` the token
/// endpoint, `exp` in the future, a `jti`. (The emulator holds no client key, so it does not
/// check the signature; the crate's own tests verify signatures with the public key.)
fn assertion_ok(assertion: &str, client_id: &str, token_url: &str) -> bool {
    let Some(claims) = assertion
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    else {
        return false;
    };
    claims["iss"] == client_id
        && claims["sub"] == client_id
        && claims["aud"] == token_url
        && claims["exp"].as_u64().is_some_and(|exp| exp > unix_now())
        && claims["jti"].as_str().is_some_and(|jti| !jti.is_empty())
}

fn screening_eagle(state: &State, req: &TokenRequest) -> Answer {
    let config = lock(&state.config).clone();
    let error = |status: StatusCode, error: &str, description: &str| {
        json_answer(
            status,
            json!({ "error": error, "errorDescription": description }).to_string(),
        )
    };
    let credentials = req
        .authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let Some((id, secret)) = credentials.as_deref().and_then(|c| c.split_once(':')) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "missing client credentials",
        );
    };
    if id != config.client_id || secret != config.client_secret {
        return error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "invalid client credentials",
        );
    }
    match req.field("grant_type") {
        Some("client_credentials") => {}
        Some("authorization_code") => {
            return error(StatusCode::BAD_REQUEST, "Bad Request", "code is required");
        }
        _ => return error(StatusCode::BAD_REQUEST, "Bad Request", "invalid grant_type"),
    }
    let scope = req.field("scope").unwrap_or_default().to_owned();
    let lifetime = config.token_lifetime.as_secs();
    let audience = "integration-emulator";
    let claims = |extra: Value| {
        let mut c = json!({
            "aud": audience, "iss": "Screening Eagle ID", "sub": "1302",
            "iat": unix_now(), "exp": unix_now() + lifetime, "jti": random_id(),
        });
        if let (Value::Object(c), Value::Object(extra)) = (&mut c, extra) {
            c.extend(extra);
        }
        c
    };
    let token = jwt(claims(json!({ "scp": scope })));
    issue(
        state,
        &token,
        Provider::ScreeningEagle,
        audience,
        &[],
        &config,
    );
    let id_token = jwt(claims(json!({ "email": "test@screeningeagle.example" })));
    let refresh_token = jwt(claims(json!({ "scp": "openid email profile offline" })));
    super::observed("id_token", &id_token);
    super::observed("refresh_token", &refresh_token);
    json_answer(
        StatusCode::OK,
        json!({
            "scope": scope,
            "token_type": "Bearer",
            "access_token": token,
            "expires_in": lifetime,
            "id_token": id_token,
            "refresh_token": refresh_token,
        })
        .to_string(),
    )
}

fn kpn(state: &State, req: &TokenRequest) -> Answer {
    let config = lock(&state.config).clone();
    let error = |status: StatusCode, code: &str, message: String| {
        json_answer(
            status,
            json!({ "ErrorCode": code, "Error": message }).to_string(),
        )
    };
    let grant_type = form_urlencoded::parse(req.query.as_bytes())
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v.into_owned());
    match grant_type.as_deref() {
        Some("client_credentials") => {}
        None => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Required param : grant_type".to_owned(),
            );
        }
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("Unsupported grant type : {other}"),
            );
        }
    }
    if req.field("client_id") != Some(config.client_id.as_str())
        || req.field("client_secret") != Some(config.client_secret.as_str())
    {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "ClientId is Invalid".to_owned(),
        );
    }
    let token: String = (0..28).map(|_| fastrand::alphanumeric()).collect();
    issue(state, &token, Provider::Kpn, "", &[], &config);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    json_answer(
        StatusCode::OK,
        json!({
            "refresh_token_expires_in": "0",
            "api_product_list": "[emulator]",
            "organization_name": "kpn",
            "developer_email": "demo@kpn.example",
            "token_type": "BearerToken",
            "issued_at": now_ms.to_string(),
            "client_id": config.client_id,
            "access_token": token,
            "application_name": "emulator",
            "level": "demo",
            "scope": "",
            "expires_in": config.token_lifetime.as_secs().to_string(),
            "refresh_token": "",
            "refresh_count": "0",
            "status": "approved",
        })
        .to_string(),
    )
}

fn issue(
    state: &State,
    token: &str,
    provider: Provider,
    audience: &str,
    roles: &[String],
    config: &super::EmulatorBuilder,
) {
    super::observed("access_token", token);
    lock(&state.issued).insert(
        token.to_owned(),
        Issued {
            provider,
            expires_at: Instant::now() + config.token_lifetime,
            audience: audience.to_owned(),
            roles: roles.to_vec(),
        },
    );
}

/// The protected API, as Kontrolle+ describes it: 401 for a bad, unknown or expired token or
/// the wrong audience; 403 for a missing role.
fn api(state: &State, rest: &str, req: &Request<Incoming>) -> Answer {
    state.api_requests.fetch_add(1, Ordering::SeqCst);
    let provider = match rest.split('/').next() {
        Some("kontrolle") => Provider::KontrollePlus,
        Some("screening-eagle") => Provider::ScreeningEagle,
        Some("kpn") => Provider::Kpn,
        _ => return plain(StatusCode::NOT_FOUND, "unknown API"),
    };
    let unauthorized = |why: &str| {
        let mut answer = json_answer(
            StatusCode::UNAUTHORIZED,
            json!({ "error": "invalid_token", "error_description": why }).to_string(),
        );
        answer.headers_mut().insert(
            WWW_AUTHENTICATE,
            format!("Bearer error=\"invalid_token\", error_description=\"{why}\"")
                .parse()
                .expect("ASCII"),
        );
        answer
    };
    let Some(token) = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return unauthorized("no bearer token");
    };
    match judge(state, provider, token) {
        TokenCheck::Accepted => json_answer(
            StatusCode::OK,
            json!({ "ok": true, "provider": provider.to_string() }).to_string(),
        ),
        TokenCheck::Unauthorized(why) => unauthorized(why),
        TokenCheck::Forbidden(why) => json_answer(
            StatusCode::FORBIDDEN,
            json!({ "error": "forbidden", "error_description": why }).to_string(),
        ),
    }
}

/// What the protected API makes of `token` for `provider`'s API (the one check, for the HTTP
/// API and [`Emulator::check_token`](crate::Emulator::check_token)).
pub(super) fn judge(state: &State, provider: Provider, token: &str) -> TokenCheck {
    let Some(issued) = lock(&state.issued).get(token).cloned() else {
        return TokenCheck::Unauthorized("unknown token");
    };
    if issued.expires_at <= Instant::now() {
        return TokenCheck::Unauthorized("token expired");
    }
    if issued.provider != provider {
        return TokenCheck::Unauthorized("token issued by another provider");
    }
    if provider == Provider::KontrollePlus {
        let config = lock(&state.config);
        if issued.audience != config.app_id_uri {
            return TokenCheck::Unauthorized("audience mismatch");
        }
        if !issued
            .roles
            .iter()
            .any(|r| r == crate::PROVIDER_API_ACCESS_ROLE)
        {
            return TokenCheck::Forbidden("missing role ProviderApi.Access");
        }
    }
    TokenCheck::Accepted
}

fn jwt(claims: Value) -> String {
    let mut signature = [0u8; 32];
    signature.iter_mut().for_each(|b| *b = fastrand::u8(..));
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT","kid":"emulator"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn random_id() -> String {
    format!("{:032x}", fastrand::u128(..))
}

fn json_answer(status: StatusCode, body: String) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(body)));
    *answer.status_mut() = status;
    answer
        .headers_mut()
        .insert(CONTENT_TYPE, "application/json".parse().expect("ASCII"));
    answer
}

fn plain(status: StatusCode, body: &'static str) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *answer.status_mut() = status;
    answer
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
