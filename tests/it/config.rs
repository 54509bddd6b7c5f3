//! Provider configuration from TOML and from environment-style variables, built into token
//! sources that work against the emulator; invalid configuration names its field.
crate::known_secrets!(
    "config.rs secret in a variable" => "Plain-Text-S3cret",
    "config.rs inline secret" => "Inline-S3cret",
    "config.rs malformed secret" => MALFORMED,
    "config.rs numeric secret" => NUMERIC,
);

/// A secret written into a configuration in a shape it cannot have.
const MALFORMED: &str = "Plain-S3cret-XYZ";
const NUMERIC: &str = "918273645123";

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
