//! Provider configuration from TOML and from environment-style variables, built into token
//! sources that work against the emulator; invalid configuration names its field.
crate::known_secrets!(
    "config.rs secret in a variable" => "Plain-Text-S3cret",
    "config.rs inline secret" => "Inline-S3cret",
    "config.rs malformed secret" => MALFORMED,
    "config.rs numeric secret" => NUMERIC,
    "config.rs store encryption key" => std::str::from_utf8(&STORE_KEY).unwrap(),
    "config.rs store encryption key, base64" => &base64(&STORE_KEY),
    "config.rs store old key" => std::str::from_utf8(&OLD_KEY).unwrap(),
    "config.rs store old key, hex" => &hex(&OLD_KEY),
    "config.rs store key secret" => std::str::from_utf8(&KEY_SECRET).unwrap(),
    "config.rs store key secret, base64" => &base64(&KEY_SECRET),
    "config.rs short store key, base64" => &base64(SHORT_KEY),
    "config.rs Redis password" => REDIS_PASSWORD,
    "config.rs store client secret" => STORE_CLIENT_SECRET,
);

/// A secret written into a configuration in a shape it cannot have.
const MALFORMED: &str = "Plain-S3cret-XYZ";
const NUMERIC: &str = "918273645123";

/// The `[store]` section's secrets.
const STORE_KEY: [u8; 32] = *b"config-store-encryption-key-32by";
const OLD_KEY: [u8; 32] = *b"config-store-old-decrypt-key-32b";
const KEY_SECRET: [u8; 36] = *b"config-store-key-name-secret-36bytes";
const SHORT_KEY: &[u8] = b"config-short-16b";
const REDIS_PASSWORD: &str = "Store-Redis-Pw-41d7";
const STORE_CLIENT_SECRET: &str = "Store-Client-S3cret-9e";

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

use std::collections::HashMap;
use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower_bearer::config::ProviderConfig;
use tower_bearer::oauth::ServiceTransport;
use tower_bearer::{TokenErrorKind, TokenSource};
use tower_bearer_emulator::{Emulator, Provider};

fn transport() -> ServiceTransport<
    Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    Full<Bytes>,
> {
    ServiceTransport::new(Client::builder(TokioExecutor::new()).build_http())
}

/// A secret file of its own for each test.
fn secret_file(name: &str, secret: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("tower-bearer-{}-{name}", std::process::id()));
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    path
}

#[tokio::test]
async fn runbooks_in_toml_build_working_sources_for_every_provider() {
    let emulator = Emulator::start().await.unwrap();
    let secret = secret_file("runbook", &emulator.client_secret());
    let secret = secret.display();
    let runbooks = [
        (
            Provider::KontrollePlus,
            format!(
                r#"
                provider = "kontrolle"
                environment = "acceptance"
                authority = "{}"
                client_id = "{}"
                client_secret = {{ file = "{secret}" }}
                scope = "{}/.default"
                required_role = "ProviderApi.Access"
                "#,
                emulator.authority(),
                emulator.client_id(),
                emulator.app_id_uri()
            ),
        ),
        (
            Provider::ScreeningEagle,
            format!(
                r#"
                provider = "screening-eagle"
                base_url = "{}"
                client_id = "{}"
                client_secret = {{ file = "{secret}" }}
                scope = ["openid", "email", "profile", "inspect"]
                "#,
                emulator.screening_eagle_base_url(),
                emulator.client_id()
            ),
        ),
        (
            Provider::Kpn,
            format!(
                r#"
                provider = "kpn"
                environment = "sandbox"
                token_endpoint = "{}"
                client_id = "{}"
                client_secret = {{ file = "{secret}" }}
                "#,
                emulator.token_url(Provider::Kpn),
                emulator.client_id()
            ),
        ),
    ];
    for (provider, runbook) in runbooks {
        let config: ProviderConfig = toml::from_str(&runbook).unwrap();
        let token = config.build(transport()).unwrap().token().await.unwrap();
        assert!(token.is_bearer(), "{provider}");
        assert_eq!(emulator.token_requests(provider), 1);
    }
}

#[tokio::test]
async fn environment_variables_with_a_prefix() {
    let emulator = Emulator::start().await.unwrap();
    let secret = secret_file("env", &emulator.client_secret());
    let vars = HashMap::from([
        ("SE_PROVIDER".to_owned(), "screening-eagle".to_owned()),
        (
            "SE_BASE_URL".to_owned(),
            emulator.screening_eagle_base_url(),
        ),
        ("SE_CLIENT_ID".to_owned(), emulator.client_id()),
        (
            "SE_CLIENT_SECRET_FILE".to_owned(),
            secret.display().to_string(),
        ),
        ("SE_SCOPE".to_owned(), "openid email".to_owned()),
    ]);
    let config = ProviderConfig::from_lookup("SE", |n| vars.get(n).cloned()).unwrap();
    assert_eq!(config.scope, ["openid", "email"]);
    assert!(config.build(transport()).unwrap().token().await.is_ok());

    // A secret put directly in <PREFIX>_CLIENT_SECRET is refused and not echoed.
    let mut with_secret = vars.clone();
    with_secret.insert("SE_CLIENT_SECRET".into(), "Plain-Text-S3cret".into());
    let err = ProviderConfig::from_lookup("SE", |n| with_secret.get(n).cloned()).unwrap_err();
    assert!(
        err.to_string().contains("SE_CLIENT_SECRET")
            && !err.to_string().contains("Plain-Text-S3cret")
    );
    let err = ProviderConfig::from_lookup("NONE", |_| None).unwrap_err();
    assert!(err.to_string().contains("NONE_PROVIDER"), "{err}");
}

#[test]
fn invalid_configuration_names_the_field_and_the_fix() {
    let parse = |text: &str| toml::from_str::<ProviderConfig>(text);
    let build = |text: &str| parse(text).unwrap().build(transport()).unwrap_err();

    let err = build(
        r#"provider = "kpn"
        client_id = "id""#,
    );
    assert_eq!(err.kind(), TokenErrorKind::Configuration);
    assert!(
        err.to_string().contains("`client_secret`: is not set"),
        "{err}"
    );

    let err = build(
        r#"provider = "kpn"
        client_id = "id"
        client_secret = { value = "Inline-S3cret" }"#,
    );
    assert!(err.to_string().contains("holds the secret itself"), "{err}");
    assert!(!err.to_string().contains("Inline-S3cret"));
    let config = parse(
        r#"provider = "kpn"
        client_id = "id"
        client_secret = { value = "Inline-S3cret" }"#,
    )
    .unwrap();
    assert!(!format!("{config:?}").contains("Inline-S3cret"));

    let err = build(
        r#"provider = "kpn"
        client_id = "id"
        client_secret = { env = "TOWER_BEARER_SURELY_UNSET" }"#,
    );
    assert!(
        err.to_string().contains("TOWER_BEARER_SURELY_UNSET"),
        "{err}"
    );

    let secret = secret_file("invalid", "s");
    let err = build(&format!(
        r#"provider = "kontrolle"
        authority = "https://login.example/t"
        client_id = "id"
        client_secret = {{ file = "{}" }}
        scope = "api://kontrolle-plus""#,
        secret.display()
    ));
    assert!(err.to_string().contains("`scope`"), "{err}");

    // The builders' errors, in the configuration's words: the field to fix.
    let err = build(&format!(
        r#"provider = "kontrolle"
        client_id = "id"
        client_secret = {{ file = "{}" }}
        scope = "api://kontrolle-plus/.default""#,
        secret.display()
    ));
    assert!(err.to_string().contains("`token_endpoint`"), "{err}");
    assert!(err.hint().unwrap().contains("authority"), "{err}");
    let err = build(&format!(
        r#"provider = "screening-eagle"
        client_id = "id"
        client_secret = {{ file = "{}" }}"#,
        secret.display()
    ));
    assert!(err.to_string().contains("`base_url`"), "{err}");
    let err = build(&format!(
        r#"provider = "generic"
        token_endpoint = "http://as.example/token"
        client_id = "id"
        client_secret = {{ file = "{}" }}"#,
        secret.display()
    ));
    assert!(err.to_string().contains("`token_endpoint`"), "{err}");
    assert!(err.to_string().contains("plain http"), "{err}");

    let err = parse(
        r#"provider = "kpn"
        client_id = "id"
        client_sercet = { env = "X" }"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("client_sercet"), "{err}");
    let err = parse(
        r#"provider = "okta"
        client_id = "id""#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("okta"), "{err}");
}

/// Where a misconfiguration of the table below is written.
enum Written {
    Toml(String),
    Env(Vec<(&'static str, String)>),
}

/// One row per misconfiguration, from a file or from `PARTNER_*` variables: reading or
/// building fails with a configuration error whose message names the field (as the source
/// names it) and whose hint says the fix (in the source's syntax).
#[test]
fn each_misconfiguration_names_its_field_and_the_fix_in_the_syntax_of_its_source() {
    let secret = secret_file("table", "Plain-Text-S3cret");
    let secret = secret.display().to_string();
    let empty = secret_file("table-empty", "");
    let empty = empty.display().to_string();
    let toml = |body: &str| Written::Toml(body.to_owned());
    let file = |name: &str, extra: &str| {
        toml(&format!(
            "provider = \"{name}\"\nclient_id = \"client-7\"\nclient_secret = {{ file = \"{secret}\" }}\n{extra}"
        ))
    };
    let env = |extra: &[(&'static str, &str)]| {
        let mut vars = vec![
            ("PARTNER_PROVIDER", "generic".to_owned()),
            ("PARTNER_CLIENT_ID", "client-7".to_owned()),
            ("PARTNER_CLIENT_SECRET_FILE", secret.clone()),
            (
                "PARTNER_TOKEN_ENDPOINT",
                "https://login.partner.example/oauth2/token".to_owned(),
            ),
        ];
        for (name, value) in extra {
            vars.retain(|(n, _)| n != name);
            if !value.is_empty() {
                vars.push((name, (*value).to_owned()));
            }
        }
        Written::Env(vars)
    };
    let rows: Vec<(&str, Written, &str, &str)> = vec![
        // (misconfiguration, where, the field the message names, what the hint says)
        (
            "an empty client id",
            toml(&format!(
                "provider = \"kpn\"\nclient_id = \"\"\nclient_secret = {{ file = \"{secret}\" }}"
            )),
            "`client_id`",
            "client_id = \"...\"",
        ),
        (
            "an empty client secret",
            toml(&format!(
                "provider = \"kpn\"\nclient_id = \"client-7\"\nclient_secret = {{ file = \"{empty}\" }}"
            )),
            "`client_secret`",
            "client_secret = { env = \"VAR\" }",
        ),
        (
            "no client secret",
            toml("provider = \"kpn\"\nclient_id = \"client-7\""),
            "`client_secret`",
            "client_secret = { env = \"VAR\" }",
        ),
        (
            "a scope with a quote",
            file(
                "generic",
                "token_endpoint = \"https://as.example/token\"\nscope = [\"orders\\\"read\"]",
            ),
            "`scope`",
            "scope = \"...\"",
        ),
        (
            "a scope with a non-ASCII character",
            file(
                "screening-eagle",
                "base_url = \"https://id.example\"\nscope = [\"lecture·écriture\"]",
            ),
            "`scope`",
            "printable ASCII",
        ),
        (
            "a preset's token endpoint over plain http",
            file("kpn", "token_endpoint = \"http://gateway.internal/token\""),
            "`token_endpoint`",
            "allow_insecure_http = true",
        ),
        (
            "an authority over plain http",
            file(
                "kontrolle",
                "authority = \"http://login.internal/t\"\nscope = \"api://k/.default\"",
            ),
            "`authority`",
            "allow_insecure_http = true",
        ),
        (
            "an issuer over plain http",
            file("generic", "issuer = \"http://login.internal\""),
            "`issuer`",
            "allow_insecure_http = true",
        ),
        (
            "an issuer with a query",
            file(
                "generic",
                "issuer = \"https://login.partner.example/?tenant=7\"",
            ),
            "`issuer`",
            "issuer = \"...\"",
        ),
        (
            "neither a token endpoint nor an issuer",
            file("generic", ""),
            "`token_endpoint`",
            "or the issuer",
        ),
        (
            "a token endpoint and an issuer",
            file(
                "generic",
                "token_endpoint = \"https://as.example/token\"\nissuer = \"https://as.example\"",
            ),
            "`token_endpoint`",
            "set one",
        ),
        (
            "an issuer for a preset",
            file("kpn", "issuer = \"https://as.example\""),
            "`issuer`",
            "provider = \"generic\"",
        ),
        (
            "an unknown variable",
            env(&[("PARTNER_SCOPES", "orders.read")]),
            "`PARTNER_SCOPES`",
            "did you mean `PARTNER_SCOPE`?",
        ),
        (
            "an unknown store variable",
            env(&[("PARTNER_STORE_URLL", "redis://127.0.0.1")]),
            "`PARTNER_STORE_URLL`",
            "did you mean `PARTNER_STORE_URL`?",
        ),
        (
            "a variable like none of ours",
            env(&[("PARTNER_COLOUR", "blue")]),
            "`PARTNER_COLOUR`",
            "PARTNER_PROVIDER",
        ),
        (
            "a scope with a quote, from the environment",
            env(&[("PARTNER_SCOPE", "orders\"read")]),
            "`PARTNER_SCOPE`",
            "`PARTNER_SCOPE=...`",
        ),
        (
            "a token endpoint over plain http, from the environment",
            env(&[("PARTNER_TOKEN_ENDPOINT", "http://gateway.internal/token")]),
            "`PARTNER_TOKEN_ENDPOINT`",
            "`PARTNER_ALLOW_INSECURE_HTTP=true`",
        ),
        (
            "no client secret, from the environment",
            env(&[("PARTNER_CLIENT_SECRET_FILE", "")]),
            "`PARTNER_CLIENT_SECRET`",
            "`PARTNER_CLIENT_SECRET_ENV=VAR`",
        ),
        (
            "a secret in the variable itself",
            env(&[("PARTNER_CLIENT_SECRET", "Plain-Text-S3cret")]),
            "`PARTNER_CLIENT_SECRET`",
            "`PARTNER_CLIENT_SECRET_ENV=VAR`",
        ),
        (
            "an empty client secret, from the environment",
            env(&[("PARTNER_CLIENT_SECRET_FILE", &empty)]),
            "`PARTNER_CLIENT_SECRET`",
            "`PARTNER_CLIENT_SECRET_ENV=VAR`",
        ),
        (
            "a switch that is not true or false",
            env(&[("PARTNER_ALLOW_INSECURE_HTTP", "yes")]),
            "`PARTNER_ALLOW_INSECURE_HTTP`",
            "`PARTNER_ALLOW_INSECURE_HTTP=true`",
        ),
        (
            "an unknown auth method",
            env(&[("PARTNER_AUTH_METHOD", "basic")]),
            "`PARTNER_AUTH_METHOD`",
            "`PARTNER_AUTH_METHOD=client_secret_basic`",
        ),
        (
            "no token endpoint, from the environment",
            env(&[("PARTNER_TOKEN_ENDPOINT", "")]),
            "`PARTNER_TOKEN_ENDPOINT`",
            "`PARTNER_TOKEN_ENDPOINT=...`",
        ),
    ];
    for (misconfiguration, written, field, fix) in rows {
        let err = match &written {
            Written::Toml(text) => toml::from_str::<ProviderConfig>(text)
                .unwrap_or_else(|e| panic!("{misconfiguration}: {e}"))
                .build(transport()),
            Written::Env(vars) => ProviderConfig::from_vars(
                "PARTNER",
                vars.iter().map(|(k, v)| (k.to_string(), v.clone())),
            )
            .and_then(|config| config.build(transport())),
        }
        .map(|_| ())
        .expect_err(misconfiguration);
        assert_eq!(
            err.kind(),
            TokenErrorKind::Configuration,
            "{misconfiguration}: {err}"
        );
        assert!(
            err.message().contains(field),
            "{misconfiguration}: the message does not name {field}: {err}"
        );
        let hint = err.hint().unwrap_or_default();
        assert!(
            hint.contains(fix),
            "{misconfiguration}: the hint does not say {fix}: {err}"
        );
        assert!(
            !err.to_string().contains("Plain-Text-S3cret"),
            "{misconfiguration}: {err}"
        );
    }

    // A variable that a `*_ENV` variable names as the secret's is not unknown, and the allowed
    // switches are read.
    let Written::Env(mut vars) = env(&[
        ("PARTNER_CLIENT_SECRET_FILE", ""),
        ("PARTNER_CLIENT_SECRET_ENV", "PARTNER_SECRET"),
        ("PARTNER_SECRET", "Plain-Text-S3cret"),
        ("PARTNER_ALLOW_INSECURE_HTTP", "true"),
        ("PARTNER_AUTH_METHOD", "client_secret_post"),
        ("PARTNER_TOKEN_ENDPOINT", "http://gateway.internal/token"),
    ]) else {
        unreachable!()
    };
    vars.push(("OTHER_SCOPES", "not ours".to_owned()));
    let config = ProviderConfig::from_vars("PARTNER", vars).unwrap();
    assert!(config.allow_insecure_http);
    assert_eq!(
        config.auth_method,
        Some(tower_bearer::providers::AuthMethod::ClientSecretPost)
    );
}

#[tokio::test]
async fn a_bare_string_secret_is_an_inline_value_refused_without_showing_it() {
    // What a new user writes first.
    let text = r#"provider = "kpn"
        client_id = "id"
        client_secret = "Plain-S3cret-XYZ""#;
    let config: ProviderConfig = toml::from_str(text).unwrap();
    assert!(!format!("{config:?}").contains(MALFORMED));
    let err = config.build(transport()).unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("holds the secret itself"), "{shown}");
    assert!(!shown.contains(MALFORMED), "{shown}");

    // Allowed, it works like `{ value = ... }`.
    let emulator = Emulator::start().await.unwrap();
    let text = format!(
        r#"provider = "kpn"
        token_endpoint = "{}"
        client_id = "{}"
        client_secret = "{}"
        allow_inline_secret = true"#,
        emulator.token_url(Provider::Kpn),
        emulator.client_id(),
        emulator.client_secret(),
    );
    let config: ProviderConfig = toml::from_str(&text).unwrap();
    assert!(config.build(transport()).unwrap().token().await.is_ok());
}

#[test]
fn no_error_about_a_malformed_secret_shows_it() {
    let shapes = [
        format!("client_secret = {NUMERIC}"),
        format!("client_secret = {{ value = {NUMERIC} }}"),
        format!("client_secret = {{ token = \"{MALFORMED}\" }}"),
        format!("client_secret = {{ {MALFORMED} = \"x\" }}"),
        format!("client_secret = [[\"{MALFORMED}\"]]"),
        format!("client_secret = [\"{MALFORMED}\", {NUMERIC}]"),
        format!("client_secret = {{ value = [\"{MALFORMED}\"] }}"),
        format!("client_secret = {{ value = {{ inner = \"{MALFORMED}\" }} }}"),
        format!("client_secret = {{ env = \"X\", value = \"{MALFORMED}\" }}"),
        format!("client_secret = {{ value = \"{MALFORMED}\", file = \"f\" }}"),
        "client_secret = {}".to_owned(),
        "client_secret = true".to_owned(),
        "client_secret = 1979-05-27T07:32:00Z".to_owned(),
        format!("client_secret = {NUMERIC}.5"),
    ];
    for shape in shapes {
        let text = format!("provider = \"kpn\"\nclient_id = \"id\"\n{shape}\n");
        let shown = match toml::from_str::<ProviderConfig>(&text) {
            // Read: the problem is reported when building.
            Ok(config) => {
                let err = config.build(transport()).unwrap_err();
                assert!(
                    err.to_string().contains("`client_secret`"),
                    "{shape}: {err}"
                );
                format!("{config:?} {err} {err:?}")
            }
            Err(err) => panic!("{shape}: the read failed: {}", err.message()),
        };
        for secret in [MALFORMED, NUMERIC] {
            assert!(!shown.contains(secret), "{shape}: {shown}");
        }
        // The same in JSON.
        let json = format!(
            r#"{{"provider":"kpn","client_id":"id","client_secret":{}}}"#,
            serde_json::to_string(&toml::from_str::<toml::Table>(&shape).unwrap()["client_secret"])
                .unwrap()
        );
        let err = serde_json::from_str::<ProviderConfig>(&json)
            .unwrap()
            .build(transport())
            .unwrap_err();
        assert!(
            !format!("{err} {err:?}").contains(MALFORMED),
            "{json}: {err}"
        );

        // `SecretRef` on its own fails, and its error never holds the input either.
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Only {
            client_secret: tower_bearer::config::SecretRef,
        }
        if let Err(err) = toml::from_str::<Only>(&shape) {
            // (toml's `Display` quotes the source line itself; its message is ours.)
            assert!(err.message().contains("client_secret"), "{shape}: {err}");
            for secret in [MALFORMED, NUMERIC] {
                assert!(
                    !err.message().contains(secret),
                    "{shape}: {}",
                    err.message()
                );
            }
        }
        let json = json.replace(r#""provider":"kpn","client_id":"id","#, "");
        if let Err(err) = serde_json::from_str::<Only>(&json) {
            let shown = format!("{err} {err:?}");
            for secret in [MALFORMED, NUMERIC] {
                assert!(!shown.contains(secret), "{json}: {shown}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The `[store]` section
// ---------------------------------------------------------------------------------------------

/// The files a secret manager would mount for a fleet's store: the encryption key (base64),
/// an older key (hex), the key secret (base64), the client secret.
struct StoreFiles {
    key: PathBuf,
    old: PathBuf,
    secret: PathBuf,
    client_secret: PathBuf,
}

fn store_files(name: &str, client_secret: &str) -> StoreFiles {
    StoreFiles {
        key: secret_file(&format!("{name}-key"), &base64(&STORE_KEY)),
        old: secret_file(&format!("{name}-old"), &hex(&OLD_KEY)),
        secret: secret_file(&format!("{name}-secret"), &base64(&KEY_SECRET)),
        client_secret: secret_file(&format!("{name}-client"), client_secret),
    }
}

/// A KPN configuration at `token_endpoint` with a `[store]` section whose URL is `url` (a TOML
/// value) and whose other settings come after `extra`.
fn store_toml(files: &StoreFiles, token_endpoint: &str, url: &str, extra: &str) -> String {
    format!(
        r#"
        provider = "kpn"
        token_endpoint = "{token_endpoint}"
        client_id = "client-7"
        client_secret = {{ file = "{}" }}

        [store]
        url = {url}
        encryption_key = {{ file = "{}" }}
        key_id = "2026-12"
        decryption_keys = [{{ id = "2026-06", key = {{ file = "{}" }} }}]
        key_secret = {{ file = "{}" }}
        {extra}
        "#,
        files.client_secret.display(),
        files.key.display(),
        files.old.display(),
        files.secret.display(),
    )
}

/// The same store section read from TOML, JSON and `<PREFIX>_STORE_*` variables is the same
/// section; with feature `redis` each gives a cache builder whose store key is the flow's own
/// (`ClientCredentials::store_key`), the prefix defaulting to `tower-bearer:<provider>`.
#[test]
fn a_store_section_from_toml_json_or_the_environment() {
    let files = store_files("store-same", STORE_CLIENT_SECRET);
    let endpoint = "https://api.partner.example/oauth/token";
    let text = store_toml(
        &files,
        endpoint,
        "\"redis://127.0.0.1:6379\"",
        "prefix = \"billing\"\ntimeout_ms = 100\nbudget_ms = 400\nretry_ms = 2000",
    );
    let from_toml: ProviderConfig = toml::from_str(&text).unwrap();
    let json = serde_json::to_string(&toml::from_str::<toml::Table>(&text).unwrap()).unwrap();
    let from_json: ProviderConfig = serde_json::from_str(&json).unwrap();
    let path = |p: &PathBuf| p.display().to_string();
    let vars = HashMap::from([
        ("P_PROVIDER".to_owned(), "kpn".to_owned()),
        ("P_TOKEN_ENDPOINT".to_owned(), endpoint.to_owned()),
        ("P_CLIENT_ID".to_owned(), "client-7".to_owned()),
        (
            "P_CLIENT_SECRET_FILE".to_owned(),
            path(&files.client_secret),
        ),
        (
            "P_STORE_URL".to_owned(),
            "redis://127.0.0.1:6379".to_owned(),
        ),
        ("P_STORE_ENCRYPTION_KEY_FILE".to_owned(), path(&files.key)),
        ("P_STORE_KEY_ID".to_owned(), "2026-12".to_owned()),
        (
            "P_STORE_DECRYPTION_KEYS_FILE".to_owned(),
            format!("2026-06={}", path(&files.old)),
        ),
        ("P_STORE_KEY_SECRET_FILE".to_owned(), path(&files.secret)),
        ("P_STORE_PREFIX".to_owned(), "billing".to_owned()),
        ("P_STORE_TIMEOUT_MS".to_owned(), "100".to_owned()),
        ("P_STORE_BUDGET_MS".to_owned(), "400".to_owned()),
        ("P_STORE_RETRY_MS".to_owned(), "2000".to_owned()),
    ]);
    let from_env = ProviderConfig::from_lookup("P", |n| vars.get(n).cloned()).unwrap();
    let shown = format!("{:?}", from_toml.store.as_ref().unwrap());
    assert!(
        shown.contains("\"billing\"") && shown.contains("2026-06"),
        "{shown}"
    );
    assert_eq!(
        format!("{:?}", from_json.store),
        format!("{:?}", from_toml.store)
    );
    assert_eq!(
        format!("{:?}", from_env.store),
        format!("{:?}", from_toml.store)
    );
    // No store variable, no store section.
    let mut without = vars.clone();
    without.retain(|name, _| !name.starts_with("P_STORE_"));
    let plain = ProviderConfig::from_lookup("P", |n| without.get(n).cloned()).unwrap();
    assert!(plain.store.is_none());

    #[cfg(feature = "redis")]
    {
        let expected = from_toml
            .build(transport())
            .unwrap()
            .store_key("billing", &KEY_SECRET)
            .unwrap();
        for config in [&from_toml, &from_json, &from_env] {
            let builder = config
                .cache_builder(config.build(transport()).unwrap())
                .unwrap();
            let shown = format!("{builder:?}");
            assert!(shown.contains(&format!("{expected:?}")), "{shown}");
        }
        let mut default_prefix = from_toml.clone();
        default_prefix.store.as_mut().unwrap().prefix = None;
        let builder = default_prefix
            .cache_builder(default_prefix.build(transport()).unwrap())
            .unwrap();
        assert!(
            format!("{builder:?}").contains("StoreKey(tower-bearer:kpn:{"),
            "{builder:?}"
        );
        // Without a section: a plain cache builder.
        let builder = plain
            .cache_builder(plain.build(transport()).unwrap())
            .unwrap();
        assert!(
            format!("{builder:?}").contains("store: None"),
            "{builder:?}"
        );
    }
    #[cfg(not(feature = "redis"))]
    {
        let err = from_toml
            .cache_builder(from_toml.build(transport()).unwrap())
            .unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::Configuration);
        assert!(err.to_string().contains("without feature `redis`"), "{err}");
    }
}

/// Every mistake in a store section names the field and what to do, and no error, nor the
/// configuration's `Debug`, holds a key, the key secret, the Redis password or the client
/// secret.
#[cfg(feature = "redis")]
#[test]
fn invalid_store_sections_name_the_field_and_show_no_secret() {
    let files = store_files("store-invalid", STORE_CLIENT_SECRET);
    let short = secret_file("store-short", &base64(SHORT_KEY));
    let garbage = secret_file("store-garbage", "config-store-encryption-key-32by!");
    let short_secret = secret_file("store-short-secret", &hex(&STORE_KEY[..31]));
    let endpoint = "https://api.partner.example/oauth/token";
    let url = "\"redis://127.0.0.1:6379\"";
    let with = |url: &str, extra: &str| store_toml(&files, endpoint, url, extra);
    let replace = |from: &str, to: &str| with(url, "").replacen(from, to, 1);
    let key_line = format!("encryption_key = {{ file = \"{}\" }}", files.key.display());
    let secret_line = format!("key_secret = {{ file = \"{}\" }}", files.secret.display());
    let cases: Vec<(String, &str, &str)> = vec![
        // (configuration, the field named, what the hint says)
        (
            replace(&format!("url = {url}"), ""),
            "`store.url`: is not set",
            "env",
        ),
        (
            with(&format!("\"redis://:{REDIS_PASSWORD}@127.0.0.1:6379\""), ""),
            "`store.url`: holds the secret itself",
            "env",
        ),
        (
            with(
                &format!("\"redis://:{REDIS_PASSWORD}@127.0.0.1:notaport\""),
                "",
            )
            .replace("client-7\"", "client-7\"\nallow_inline_secret = true"),
            "`store.url`",
            "Redis URL",
        ),
        (
            with("\"redis://a:6379, redis://b:6379\"", "cluster = false"),
            "`store.cluster`: is false, but `store.url` holds 2 URLs",
            "cluster = true",
        ),
        (
            replace("key_id = \"2026-12\"", ""),
            "`store.key_id`: is not set",
            "2026-12",
        ),
        (
            replace("key_id = \"2026-12\"", "key_id = \"with space\""),
            "`store.key_id`",
            "2026-12",
        ),
        (
            replace(&key_line, ""),
            "`store.encryption_key`: is not set",
            "env",
        ),
        (
            replace(
                &key_line,
                &format!("encryption_key = {{ file = \"{}\" }}", short.display()),
            ),
            "`store.encryption_key`: is 16 bytes; an AES-256 key is exactly 32",
            "openssl rand -base64 32",
        ),
        (
            replace(
                &key_line,
                &format!("encryption_key = {{ file = \"{}\" }}", garbage.display()),
            ),
            "`store.encryption_key`: is neither hex nor base64",
            "openssl rand -hex 32",
        ),
        (
            replace(
                &key_line,
                &format!("encryption_key = \"{}\"", base64(&STORE_KEY)),
            ),
            "`store.encryption_key`: holds the secret itself",
            "allow_inline_secret",
        ),
        (
            replace(
                &key_line,
                &format!("encryption_key = {{ token = \"{}\" }}", base64(&STORE_KEY)),
            ),
            "`store.encryption_key`: has a key that is not",
            "env",
        ),
        (
            replace(
                &key_line,
                "encryption_key = { env = \"TOWER_BEARER_SURELY_UNSET\" }",
            ),
            "`store.encryption_key`: the environment variable `TOWER_BEARER_SURELY_UNSET`",
            "secret store",
        ),
        (
            replace("id = \"2026-06\"", "id = \"2026-12\""),
            "`store.decryption_keys[0].id`: `2026-12` is already the id",
            "own id",
        ),
        (
            replace(
                &format!("key = {{ file = \"{}\" }}", files.old.display()),
                &format!("key = {{ value = {} }}", 42),
            ),
            "`store.decryption_keys[0].key`",
            "env",
        ),
        (
            replace(
                &format!("key = {{ file = \"{}\" }}", files.old.display()),
                &format!("key = {{ file = \"{}\" }}", short.display()),
            ),
            "`store.decryption_keys[0].key`: is 16 bytes",
            "openssl rand",
        ),
        (
            replace(&secret_line, ""),
            "`store.key_secret`: is not set",
            "env",
        ),
        (
            replace(
                &secret_line,
                &format!("key_secret = {{ file = \"{}\" }}", short_secret.display()),
            ),
            "`store.key_secret`: is 31 bytes; it must be at least 32",
            "openssl rand -base64 32",
        ),
        (
            with(url, "prefix = \"app{x}\""),
            "`store.prefix`: holds `{` or `}`",
            "visible ASCII",
        ),
        (
            with(url, "prefix = \"\""),
            "`store.prefix`: is empty",
            "visible ASCII",
        ),
        (
            with(url, "timeout_ms = 0"),
            "`store.timeout_ms`: is 0",
            "milliseconds",
        ),
        (
            with(url, "timeout_ms = 2000\nbudget_ms = 500"),
            "`store.timeout_ms`: (2000 ms) is longer than `store.budget_ms` (500 ms)",
            "at most budget_ms",
        ),
        (
            with(url, "ca_file = \"/nonexistent/tower-bearer-ca.pem\""),
            "`store.ca_file`: cannot read",
            "path",
        ),
    ];
    let secrets = [
        std::str::from_utf8(&STORE_KEY).unwrap().to_owned(),
        base64(&STORE_KEY),
        hex(&OLD_KEY),
        base64(&KEY_SECRET),
        base64(SHORT_KEY),
        hex(&STORE_KEY[..31]),
        REDIS_PASSWORD.to_owned(),
        STORE_CLIENT_SECRET.to_owned(),
    ];
    for (text, field, hint) in &cases {
        let config: ProviderConfig =
            toml::from_str(text).unwrap_or_else(|e| panic!("{field}: {}", e.message()));
        let source = config.build(transport()).unwrap();
        let err = config.cache_builder(source).unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::Configuration, "{field}: {err}");
        assert!(err.to_string().contains(field), "{field}: {err}");
        assert!(err.hint().unwrap_or("").contains(hint), "{field}: {err}");
        let shown = format!("{config:?} {config:#?} {err} {err:?}");
        for secret in &secrets {
            assert!(
                !shown.contains(secret.as_str()),
                "{field}: {secret} in {shown}"
            );
        }
    }
    // Unknown fields in the section are refused by name.
    let err = toml::from_str::<ProviderConfig>(&with(url, "encryption_kye = 1")).unwrap_err();
    assert!(
        err.message().contains("encryption_kye"),
        "{}",
        err.message()
    );
}

/// `<PREFIX>_STORE_*` variables name secrets, never hold them: a key or key secret given
/// directly is refused, a URL with a password too; the errors show none of them.
#[test]
fn store_variables_refer_to_secrets_and_are_checked() {
    let base = HashMap::from([
        ("S_PROVIDER".to_owned(), "kpn".to_owned()),
        ("S_CLIENT_ID".to_owned(), "client-7".to_owned()),
        ("S_CLIENT_SECRET_ENV".to_owned(), "S_SECRET".to_owned()),
    ]);
    let read = |extra: &[(&str, String)]| {
        let mut vars = base.clone();
        vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        ProviderConfig::from_lookup("S", |n| vars.get(n).cloned())
    };
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (
            vec![("S_STORE_ENCRYPTION_KEY", base64(&STORE_KEY))],
            "`S_STORE_ENCRYPTION_KEY`: holds a secret",
        ),
        (
            vec![("S_STORE_KEY_SECRET", base64(&KEY_SECRET))],
            "`S_STORE_KEY_SECRET`: holds a secret",
        ),
        (
            vec![(
                "S_STORE_URL",
                format!("redis://:{REDIS_PASSWORD}@redis.internal"),
            )],
            "`S_STORE_URL`: holds a password",
        ),
        (
            vec![
                ("S_STORE_URL_ENV", "REDIS_URL".to_owned()),
                ("S_STORE_URL_FILE", "/run/secrets/redis-url".to_owned()),
            ],
            "`S_STORE_URL`: is given more than one way",
        ),
        (
            vec![("S_STORE_TIMEOUT_MS", "250ms".to_owned())],
            "`S_STORE_TIMEOUT_MS`: `250ms` is not a number",
        ),
        (
            vec![("S_STORE_CLUSTER", "maybe".to_owned())],
            "`S_STORE_CLUSTER`: `maybe` is not true or false",
        ),
        (
            vec![("S_STORE_DECRYPTION_KEYS_ENV", "OLD_KEY_VAR".to_owned())],
            "`S_STORE_DECRYPTION_KEYS_ENV`: `OLD_KEY_VAR` is not `id=reference`",
        ),
    ];
    for (extra, expected) in &cases {
        let err = read(extra).unwrap_err();
        assert_eq!(
            err.kind(),
            TokenErrorKind::Configuration,
            "{expected}: {err}"
        );
        assert!(err.to_string().contains(*expected), "{expected}: {err}");
        let shown = format!("{err} {err:?}");
        for secret in [
            base64(&STORE_KEY),
            base64(&KEY_SECRET),
            REDIS_PASSWORD.to_owned(),
        ] {
            assert!(!shown.contains(&secret), "{shown}");
        }
    }
    let config = read(&[
        ("S_STORE_URL_ENV", "REDIS_URL".to_owned()),
        ("S_STORE_CLUSTER", "TRUE".to_owned()),
        (
            "S_STORE_DECRYPTION_KEYS_ENV",
            "2026-06=OLD_KEY, 2025-12=OLDER_KEY".to_owned(),
        ),
    ])
    .unwrap();
    let store = config.store.unwrap();
    assert_eq!(store.cluster, Some(true));
    assert_eq!(
        format!("{:?}", store.decryption_keys),
        r#"[DecryptionKeyConfig { id: "2026-06", key: Some(Env("OLD_KEY")), problem: None }, DecryptionKeyConfig { id: "2025-12", key: Some(Env("OLDER_KEY")), problem: None }]"#
    );
}

/// Replicas configured alike share one token through a real Redis (password in a file): the
/// second cache takes the first one's token from the store, and a configuration with another
/// prefix gets its own.
#[cfg(feature = "redis")]
#[tokio::test]
async fn replicas_configured_alike_share_one_token_through_redis() {
    use crate::common::redis_server::{Server, cli, redis_installed};
    if !redis_installed() {
        return;
    }
    let server = Server::start(&[]);
    assert_eq!(
        cli(
            server.port,
            &["CONFIG", "SET", "requirepass", REDIS_PASSWORD]
        ),
        "OK"
    );
    let emulator = Emulator::start().await.unwrap();
    let files = store_files("store-redis", &emulator.client_secret());
    let url = secret_file(
        "store-redis-url",
        &format!("redis://:{REDIS_PASSWORD}@127.0.0.1:{}", server.port),
    );
    let text = store_toml(
        &files,
        &emulator.token_url(Provider::Kpn),
        &format!("{{ file = \"{}\" }}", url.display()),
        &format!("prefix = \"config-test-{}\"", std::process::id()),
    )
    .replace("client-7", &emulator.client_id());
    let replica = || {
        let config: ProviderConfig = toml::from_str(&text).unwrap();
        let source = config.build(transport()).unwrap();
        config.cache_builder(source).unwrap().build()
    };
    let (a, b) = (replica(), replica());
    let first = a.token().await.unwrap();
    let second = b.token().await.unwrap();
    assert_eq!(emulator.token_requests(Provider::Kpn), 1);
    assert_eq!(first.fingerprint(), second.fingerprint());
    assert_eq!(b.stats().store_hits, 1);

    let other: ProviderConfig =
        toml::from_str(&text.replace("config-test-", "config-other-")).unwrap();
    let c = other
        .cache_builder(other.build(transport()).unwrap())
        .unwrap()
        .build();
    c.token().await.unwrap();
    assert_eq!(emulator.token_requests(Provider::Kpn), 2);
    drop(server);
}
