//! Provider configuration parsing (JSON, and environment-style variables) takes any input
//! without panicking, and never shows an inline secret in `Debug`. A secret planted in the
//! `client_secret` field (the fuzzer's input there, with `@` standing for the secret) is never
//! in any error, from reading or from building, whatever shape the field has; nor is one
//! planted in the `[store]` section's secrets (the URL's password, the encryption key, the
//! key secret, a decryption key), from reading, building or opening the store.
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
        store_fields(&field);
        if let Err(err) = serde_json::from_str::<SecretRef>(&field) {
            assert!(!format!("{err} {err:?}").contains(SECRET));
        }
    }
});

/// The input as the `[store]` section's secrets (inline allowed), the secret planted at each
/// `@`: not in any error or `Debug`, whatever `cache_builder` makes of them.
fn store_fields(field: &str) {
    // In the URL, as its password (percent-encoded: the planted text has no reserved bytes).
    let password = match serde_json::from_str::<serde_json::Value>(field) {
        Ok(serde_json::Value::String(text)) => text,
        _ => field.to_owned(),
    };
    let encoded: String = password
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let url = serde_json::Value::String(format!("redis://user:{encoded}@127.0.0.1:1/0"));
    let json = format!(
        r#"{{"provider":"kpn","client_id":"id","token_endpoint":"https://as.example/t",
            "client_secret":"s","allow_inline_secret":true,
            "store":{{"url":{url},"encryption_key":{field},"key_id":"k","key_secret":{field},
                      "decryption_keys":[{{"id":"old","key":{field}}}]}}}}"#
    );
    let shown = match serde_json::from_str::<ProviderConfig>(&json) {
        Err(err) => format!("{err} {err:?}"),
        Ok(config) => {
            let debug = format!("{config:?}");
            match config.build(Never) {
                Err(err) => format!("{debug} {err} {err:?}"),
                Ok(source) => match config.cache_builder(source) {
                    Ok(builder) => {
                        let shown = format!("{debug} {builder:?}");
                        format!("{shown} {:?}", builder.build())
                    }
                    Err(err) => format!("{debug} {err} {err:?}"),
                },
            }
        }
    };
    assert!(!shown.contains(SECRET), "{shown}");
}
