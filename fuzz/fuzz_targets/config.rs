//! Provider configuration parsing (JSON, and environment-style variables) takes any input
//! without panicking, and never shows an inline secret in `Debug`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_bearer::config::ProviderConfig;

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
    }
});
