//! The process's rustls crypto provider, for every TLS client the crate builds (reqwest's
//! with feature `reqwest`, redis-rs' with feature `redis`).

/// Installs ring as the process's rustls crypto provider unless one is set: reqwest's rustls
/// (`rustls-no-provider`) has none, and redis-rs builds its TLS configuration with
/// `rustls::ClientConfig::builder()`, which takes the process default. The one place that does
/// it.
pub(crate) fn install_crypto_provider() {
    // Fails only when a provider is already installed, which is what we want then.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
