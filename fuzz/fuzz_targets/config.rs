//! Provider configuration parsing (JSON, and environment-style variables) takes any input
//! without panicking, and never shows an inline secret in `Debug`. A secret planted in the
//! `client_secret` field (the fuzzer's input there, with `@` standing for the secret) is never
//! in any error, from reading or from building, whatever shape the field has.
#![no_main]

use std::convert::Infallible;

use libfuzzer_sys::fuzz_target;
use tower_bearer::config::{ProviderConfig, SecretRef};

const SECRET: &str = "Pl4nted-S3cret";

/// A transport that is never called: `build` only checks the configuration.
struct Never;

impl tower_bearer::oauth::Transport for Never {
    async fn send(
        &self,
        _: http::Request<Vec<u8>>,
    ) -> Result<http::Response<bytes::Bytes>, tower_bearer::TokenError> {
        let never: Result<Infallible, _> = Err(tower_bearer::TokenError::new(
            tower_bearer::TokenErrorKind::Other,
            "not sent",
        ));
        never.map(|n| match n {})
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = serde_json::from_slice::<ProviderConfig>(data) {
        let _ = format!("{config:?}");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let vars: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let _ = ProviderConfig::from_lookup("P", |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        });
        let _ = ProviderConfig::from_vars("P", vars.clone());

        // The input as the `client_secret` field (one JSON value, so that it cannot set other
        // fields), the secret planted at each `@`.
        let field = text.replace('@', SECRET);
        if serde_json::from_str::<serde_json::Value>(&field).is_err() {
            return;
        }
        let json = format!(
            r#"{{"provider":"kpn","client_id":"id","token_endpoint":"https://as.example/t","client_secret":{field}}}"#
        );
        let shown = match serde_json::from_str::<ProviderConfig>(&json) {
            Err(err) => format!("{err} {err:?}"),
            Ok(config) => {
                let debug = format!("{config:?}");
                match (&config.client_secret, config.build(Never)) {
                    // An environment variable or a file *named* after the planted text is
                    // not a secret, and the error names it.
                    (Some(SecretRef::Env(_) | SecretRef::File(_)), _) => debug,
                    (_, Ok(source)) => format!("{debug} {source:?}"),
                    (_, Err(err)) => format!("{debug} {err} {err:?}"),
                }
            }
        };
        assert!(!shown.contains(SECRET), "{shown}");
        if let Err(err) = serde_json::from_str::<SecretRef>(&field) {
            assert!(!format!("{err} {err:?}").contains(SECRET));
        }
    }
});
