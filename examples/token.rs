//! `token`: the runbook tool. Gets one token the way the layer would and shows what came back,
//! replacing the providers' `curl` + `jq` + `base64` steps.
//!
//! ```text
//! CLIENT_SECRET=... cargo run --example token --features reqwest -- \
//!     --provider kontrolle --authority https://login.microsoftonline.com/<tenant> \
//!     --client-id <id> --scope api://kontrolle-plus/.default --require-role ProviderApi.Access
//! ```
//!
//! Every flag can also come from an environment variable (in brackets below). The client
//! secret comes only from `CLIENT_SECRET` or `--client-secret-file`, never from a flag, so it
//! stays out of shell history. The token itself is shown only with `--print-token`.
//!
//! Exit codes: 0 token obtained (and checks passed), 1 the token request or a check failed,
//! 2 bad usage.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use secrecy::ExposeSecret;
use tower_bearer::oauth::claims::{ClaimsCheck, decode_claims};
use tower_bearer::oauth::{
    ClientAuth, ClientCredentials, ClientCredentialsRequest, GrantTypeIn, ProviderError,
    ReqwestTransport,
};
use tower_bearer::providers::Provider;
use tower_bearer::{Token, TokenError, TokenSource};

const USAGE: &str = "\
usage: token [options]

  --provider kontrolle|screening-eagle|kpn|generic   [TOKEN_PROVIDER] (default generic)
  --token-url URL                                    [TOKEN_URL]
  --authority URL   Kontrolle+: token URL is <authority>/oauth2/v2.0/token [TOKEN_AUTHORITY]
  --client-id ID                                     [CLIENT_ID]
  --auth post|basic|basic-raw|private-key-jwt        [TOKEN_AUTH] (default: the provider's)
  --key FILE        PEM private key for private-key-jwt [CLIENT_KEY_FILE]
  --cert FILE       PEM certificate (x5t#S256 header) [CLIENT_CERT_FILE]
  --scope SCOPE     repeatable                       [TOKEN_SCOPE, space-separated]
  --resource URI    repeatable (RFC 8707)            [TOKEN_RESOURCE]
  --audience AUD    the `audience` request parameter [TOKEN_AUDIENCE]
  --expect-aud AUD  repeatable: accepted `aud` claim [TOKEN_EXPECT_AUD]
  --require-role R  repeatable: required `roles` claim [TOKEN_REQUIRE_ROLE]
  --ca-cert FILE    also trust this PEM root (private CA) [TOKEN_CA_CERT]
  --allow-insecure-http   plain http to a host that is not loopback [TOKEN_ALLOW_INSECURE_HTTP=1]
  --no-proxy        connect directly, ignoring HTTPS_PROXY/HTTP_PROXY/ALL_PROXY [TOKEN_NO_PROXY=1]
  --client-secret-file FILE                          [CLIENT_SECRET_FILE; or CLIENT_SECRET]
  --json            one JSON object on stdout
  --print-token     also print the access token itself
";

#[derive(Default, Debug)]
struct Options {
    provider: String,
    token_url: Option<String>,
    authority: Option<String>,
    client_id: Option<String>,
    auth: Option<String>,
    key: Option<String>,
    cert: Option<String>,
    scopes: Vec<String>,
    resources: Vec<String>,
    audience: Option<String>,
    expect_aud: Vec<String>,
    require_roles: Vec<String>,
    ca_cert: Option<String>,
    allow_insecure_http: bool,
    no_proxy: bool,
    secret_file: Option<String>,
    json: bool,
    print_token: bool,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        provider: env("TOKEN_PROVIDER").unwrap_or_else(|| "generic".into()),
        token_url: env("TOKEN_URL"),
        authority: env("TOKEN_AUTHORITY"),
        client_id: env("CLIENT_ID"),
        auth: env("TOKEN_AUTH"),
        key: env("CLIENT_KEY_FILE"),
        cert: env("CLIENT_CERT_FILE"),
        scopes: env("TOKEN_SCOPE").map(|s| vec![s]).unwrap_or_default(),
        resources: env("TOKEN_RESOURCE").map(|s| vec![s]).unwrap_or_default(),
        audience: env("TOKEN_AUDIENCE"),
        expect_aud: env("TOKEN_EXPECT_AUD").map(|s| vec![s]).unwrap_or_default(),
        require_roles: env("TOKEN_REQUIRE_ROLE")
            .map(|s| vec![s])
            .unwrap_or_default(),
        ca_cert: env("TOKEN_CA_CERT"),
        allow_insecure_http: env("TOKEN_ALLOW_INSECURE_HTTP")
            .is_some_and(|v| v == "1" || v == "true"),
        no_proxy: env("TOKEN_NO_PROXY").is_some_and(|v| v == "1" || v == "true"),
        secret_file: env("CLIENT_SECRET_FILE"),
        json: false,
        print_token: false,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--provider" => o.provider = value()?,
            "--token-url" => o.token_url = Some(value()?),
            "--authority" => o.authority = Some(value()?),
            "--client-id" => o.client_id = Some(value()?),
            "--auth" => o.auth = Some(value()?),
            "--key" => o.key = Some(value()?),
            "--cert" => o.cert = Some(value()?),
            "--scope" => o.scopes.push(value()?),
            "--resource" => o.resources.push(value()?),
            "--audience" => o.audience = Some(value()?),
            "--expect-aud" => o.expect_aud.push(value()?),
            "--require-role" => o.require_roles.push(value()?),
            "--ca-cert" => o.ca_cert = Some(value()?),
            "--allow-insecure-http" => o.allow_insecure_http = true,
            "--no-proxy" => o.no_proxy = true,
            "--client-secret-file" => o.secret_file = Some(value()?),
            "--json" => o.json = true,
            "--print-token" => o.print_token = true,
            "--client-secret" => {
                return Err(
                    "the secret is never taken from a flag (shell history): set \
                            CLIENT_SECRET or use --client-secret-file"
                        .into(),
                );
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

/// Builds the source the options describe. Usage errors are `Err(String)`.
fn source(o: &Options) -> Result<Result<ClientCredentials<ReqwestTransport>, TokenError>, String> {
    let provider: Provider = o
        .provider
        .parse()
        .map_err(|_| format!("unknown provider {}", o.provider))?;
    let (default_auth, grant_type_in) = match provider {
        Provider::KontrollePlus => ("post", GrantTypeIn::Body),
        Provider::ScreeningEagle => ("basic-raw", GrantTypeIn::Body),
        Provider::Kpn => ("post", GrantTypeIn::Query),
        Provider::Generic => ("basic", GrantTypeIn::Body),
    };
    let token_url = match (&o.token_url, &o.authority, provider) {
        (Some(url), _, _) => url.clone(),
        (None, Some(authority), Provider::KontrollePlus) => {
            format!("{}/oauth2/v2.0/token", authority.trim_end_matches('/'))
        }
        (None, None, Provider::Kpn) => tower_bearer::providers::KPN_TOKEN_URL.to_owned(),
        _ => return Err("set --token-url (or --authority for kontrolle)".into()),
    };
    let client_id = o.client_id.clone().ok_or("set --client-id")?;
    let secret = || -> Result<String, String> {
        match &o.secret_file {
            // The file's contents are wiped once the secret is copied out of them.
            Some(file) => std::fs::read_to_string(file)
                .map(|s| {
                    zeroize::Zeroizing::new(s)
                        .trim_end_matches(['\r', '\n'])
                        .to_owned()
                })
                .map_err(|e| format!("cannot read the secret file {file}: {e}")),
            None => env("CLIENT_SECRET").ok_or_else(|| {
                "set CLIENT_SECRET or --client-secret-file (the secret is never a flag)".to_owned()
            }),
        }
    };
    Ok((|| {
        let auth = match o.auth.as_deref().unwrap_or(default_auth) {
            "post" => ClientAuth::client_secret_post(client_id, secret_or(secret)?),
            "basic" => ClientAuth::client_secret_basic(client_id, secret_or(secret)?),
            "basic-raw" => ClientAuth::client_secret_basic_raw(client_id, secret_or(secret)?)?,
            "private-key-jwt" => private_key_jwt(o, client_id)?,
            other => return Err(usage_error(format!("unknown --auth {other}"))),
        };
        let mut request = if o.allow_insecure_http {
            ClientCredentialsRequest::new_allow_insecure_http(&token_url)?
        } else {
            ClientCredentialsRequest::new(&token_url)?
        }
        .grant_type_in(grant_type_in)
        .scopes(&o.scopes);
        for resource in &o.resources {
            request = request.resource(resource);
        }
        if let Some(audience) = &o.audience {
            request = request.audience(audience);
        }
        let mut transport = ReqwestTransport::builder();
        if o.no_proxy {
            transport = transport.no_proxy();
        }
        if let Some(file) = &o.ca_cert {
            let pem = std::fs::read(file)
                .map_err(|e| usage_error(format!("cannot read --ca-cert {file}: {e}")))?;
            transport = transport.add_root_certificate_pem(&pem)?;
        }
        Ok(ClientCredentials::new(request, auth, transport.build()?).max_attempts(2))
    })())
}

fn secret_or(secret: impl Fn() -> Result<String, String>) -> Result<String, TokenError> {
    secret().map_err(usage_error)
}

fn usage_error(message: String) -> TokenError {
    TokenError::configuration(message, "see `--help` for the options")
}

#[cfg(feature = "private-key-jwt")]
fn private_key_jwt(o: &Options, client_id: String) -> Result<ClientAuth, TokenError> {
    use tower_bearer::oauth::assertion::{Algorithm, JwtSigner};
    let key_file = o
        .key
        .as_deref()
        .ok_or_else(|| usage_error("--auth private-key-jwt needs --key FILE".into()))?;
    let key = std::fs::read_to_string(key_file)
        .map_err(|e| usage_error(format!("cannot read --key {key_file}: {e}")))?;
    let algorithm = if key.contains("EC PRIVATE KEY") {
        Algorithm::Es256
    } else {
        Algorithm::Rs256
    };
    let mut signer = JwtSigner::from_pem(&key, algorithm)?;
    if let Some(cert_file) = &o.cert {
        let cert = std::fs::read_to_string(cert_file)
            .map_err(|e| usage_error(format!("cannot read --cert {cert_file}: {e}")))?;
        signer = signer.with_certificate_pem(&cert)?;
    }
    Ok(ClientAuth::private_key_jwt(client_id, signer))
}

#[cfg(not(feature = "private-key-jwt"))]
fn private_key_jwt(_: &Options, _: String) -> Result<ClientAuth, TokenError> {
    Err(usage_error(
        "private-key-jwt needs the `private-key-jwt` feature: --features reqwest,private-key-jwt"
            .into(),
    ))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(o) => o,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("token: {message}\n");
            }
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let source = match source(&options) {
        Ok(source) => source,
        Err(message) => {
            eprintln!("token: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match source {
        Ok(source) => source.token().await,
        Err(error) => Err(error),
    };
    match result {
        Ok(token) => report(&options, &token),
        Err(error) => {
            failure(&options, &error);
            ExitCode::from(1)
        }
    }
}

fn report(o: &Options, token: &Token) -> ExitCode {
    let claims = decode_claims(token.access_token().expose_secret()).ok();
    let check = (!o.expect_aud.is_empty() || !o.require_roles.is_empty()).then(|| {
        let mut check = ClaimsCheck::new();
        for aud in &o.expect_aud {
            check = check.audience(aud);
        }
        for role in &o.require_roles {
            check = check.require_role(role);
        }
        check.check(token.access_token().expose_secret(), SystemTime::now())
    });
    let expires_in = token.lifetime().unwrap_or(Duration::ZERO).as_secs();
    if o.json {
        let mut out = serde_json::json!({
            "provider": o.provider,
            "token_type": token.token_type(),
            "expires_in": expires_in,
            "scope": token.scope(),
            "fingerprint": token.fingerprint().to_string(),
            "claims": claims,
            "refresh_token": token.refresh_token().is_some(),
            "id_token": token.id_token().is_some(),
            "extra": token.extra().keys().collect::<Vec<_>>(),
            "check": check.as_ref().map(|c| match c {
                Ok(_) => serde_json::json!({"passed": true}),
                Err(e) => serde_json::json!({"passed": false, "error": e.to_string()}),
            }),
        });
        if o.print_token {
            out["access_token"] = token.access_token().expose_secret().into();
        }
        println!("{out}");
    } else {
        let mut rows = BTreeMap::new();
        rows.insert("1 provider", o.provider.clone());
        rows.insert("2 token type", token.token_type().to_owned());
        rows.insert("3 expires in", format!("{expires_in} s"));
        rows.insert("4 scope", token.scope().unwrap_or("(none)").to_owned());
        rows.insert("5 fingerprint", token.fingerprint().to_string());
        let also: Vec<&str> = [
            ("refresh token", token.refresh_token().is_some()),
            ("id token", token.id_token().is_some()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect();
        rows.insert(
            "6 also received",
            if also.is_empty() {
                "-".into()
            } else {
                also.join(", ")
            },
        );
        for (key, value) in rows {
            println!("{:<16}{value}", &key[2..]);
        }
        match &claims {
            Some(claims) => println!(
                "claims (not verified: a sanity check)\n{}",
                serde_json::to_string_pretty(claims).unwrap_or_default()
            ),
            None => println!("claims          (opaque token)"),
        }
        match &check {
            Some(Ok(_)) => println!("checks          passed"),
            Some(Err(e)) => println!("checks          FAILED: {e}"),
            None => {}
        }
        if o.print_token {
            println!("access token    {}", token.access_token().expose_secret());
        }
    }
    match check {
        Some(Err(_)) => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    }
}

fn failure(o: &Options, error: &TokenError) {
    if o.json {
        let provider = error.detail::<ProviderError>().map(|p| {
            serde_json::json!({
                "description": p.description, "uri": p.uri,
                "error_codes": p.error_codes, "trace_id": p.trace_id,
                "correlation_id": p.correlation_id, "timestamp": p.timestamp,
                "body_snippet": p.body_snippet,
            })
        });
        let out = serde_json::json!({
            "error": {
                "kind": error.kind().as_str(),
                "code": error.code(),
                "status": error.status().map(|s| s.as_u16()),
                "message": error.message(),
                "hint": error.hint(),
                "retry_after": error.retry_after().map(|d| d.as_secs()),
                "provider": provider,
            }
        });
        println!("{out}");
    } else {
        eprintln!("token: {error}");
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            eprintln!("  caused by: {cause}");
            source = cause.source();
        }
    }
}
