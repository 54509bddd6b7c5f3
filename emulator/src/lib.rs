//! A loopback emulator of the three providers' token endpoints and of a protected API, for
//! tests, examples and demos: the test double of
//! [tower-bearer](https://docs.rs/tower-bearer), independent of it.
//!
//! Each endpoint behaves as its provider documents it, quirks included:
//!
//! | provider | token endpoint | client auth | answers |
//! | --- | --- | --- | --- |
//! | Kontrolle+ | `POST /kontrolle/<tenant>/oauth2/v2.0/token` | `client_secret_post` or `private_key_jwt` | RFC 6749 JSON, JWT with `aud`/`roles`/`exp`; Entra-style errors |
//! | Screening Eagle ID | `POST /screening-eagle/api/id/v1/auth/token` | raw HTTP Basic | JWT, `id_token`, `refresh_token`; `{"error","errorDescription"}` errors |
//! | KPN API Store | `POST /kpn/oauth/client_credential/accesstoken?grant_type=client_credentials` | `client_secret_post` | string-typed JSON, opaque token; Apigee errors |
//!
//! Each provider also has an issuer ([`Emulator::issuer`]) with authorization server metadata
//! (RFC 8414) naming its token endpoint and the client authentication methods it takes:
//! Kontrolle+'s and KPN's at the RFC 8414 URL (`/.well-known/oauth-authorization-server`
//! before the issuer's path), Screening Eagle ID's only at the OpenID Connect one
//! (`<issuer>/.well-known/openid-configuration`). Its requests are counted and take faults of
//! their own ([`Emulator::inject_metadata`]).
//!
//! `GET /api/<provider>/...` is a protected API: `401` for a missing, unknown or expired token
//! (or, for Kontrolle+, a wrong audience), `403` for a Kontrolle+ token without
//! `ProviderApi.Access`, `200` otherwise. Token requests are counted, and faults can be
//! injected (delays, error statuses with `Retry-After`, malformed or huge bodies, dropped
//! connections, no answer at all); every token request can be made slow
//! ([`EmulatorBuilder::token_delay`]) and every token issued so far revoked
//! ([`Emulator::revoke_all`]).
//!
//! ```
//! use tower_bearer_emulator::{Emulator, Provider};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let emulator = Emulator::start().await.unwrap();
//! let token_url = emulator.token_url(Provider::Kpn);
//! assert!(token_url.starts_with("http://127.0.0.1:"));
//! assert_eq!(emulator.token_requests(Provider::Kpn), 0);
//! # }
//! ```
//!
//! The emulator speaks plain HTTP on `127.0.0.1`, which tower-bearer allows for loopback hosts, or
//! HTTPS with a certificate you give it ([`EmulatorBuilder::tls`]), to test private CAs.
//! Its tokens are not signed by any real key: it is a test double, not an authorization server.

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![forbid(unsafe_code)]

mod server;

/// The role a Kontrolle+ token must carry for the protected API (`roles` claim).
pub const PROVIDER_API_ACCESS_ROLE: &str = "ProviderApi.Access";
/// The path of Screening Eagle ID's token endpoint, under its base URL.
pub const SCREENING_EAGLE_TOKEN_PATH: &str = "/api/id/v1/auth/token";

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A provider the emulator plays. (An enum of its own, not tower-bearer's
/// `providers::Provider`: the emulator does not depend on the library; see [`Provider::as_str`].)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Kontrolle+ (Entra ID-style).
    KontrollePlus,
    /// Screening Eagle ID.
    ScreeningEagle,
    /// KPN API Store (Apigee).
    Kpn,
}

impl Provider {
    /// All three.
    pub const ALL: [Provider; 3] = [Self::KontrollePlus, Self::ScreeningEagle, Self::Kpn];

    /// The provider's name in URLs and configuration: `kontrolle`, `screening-eagle`, `kpn`.
    ///
    /// tower-bearer's `providers::Provider` has the same names (`as_str`); its tests pin that
    /// the two enums name the same providers. The emulator has its own enum because it does
    /// not depend on the library it tests.
    ///
    /// ```
    /// use tower_bearer_emulator::Provider;
    ///
    /// assert_eq!(Provider::KontrollePlus.as_str(), "kontrolle");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::KontrollePlus => "kontrolle",
            Self::ScreeningEagle => "screening-eagle",
            Self::Kpn => "kpn",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::KontrollePlus => "Kontrolle+",
            Self::ScreeningEagle => "Screening Eagle ID",
            Self::Kpn => "KPN API Store",
        })
    }
}

/// Who hears of the secrets the emulators of this process handle; see [`observe_secrets`].
static SECRET_OBSERVER: OnceLock<fn(&str, &str)> = OnceLock::new();

/// Makes every emulator in this process tell `observer(kind, secret)` each secret it handles:
/// the client secret it is started with, every client secret, `Basic` credential and client
/// assertion it receives, and every access, ID and refresh token it issues. For leak checks: a
/// test harness that captures the logs of a run can note these values and then search the
/// capture for them. The first observer set stays; returns whether this one was set.
///
/// `kind` is one of `client_secret`, `client_secret (received)`, `basic credentials (received)`,
/// `client_assertion (received)`, `access_token`, `id_token`, `refresh_token`.
///
/// ```
/// use std::sync::Mutex;
/// use tower_bearer_emulator::{observe_secrets, Emulator};
///
/// static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// observe_secrets(|_kind, secret| SEEN.lock().unwrap().push(secret.to_owned()));
/// let emulator = Emulator::builder().client_secret("emulator-s3cret").start().await.unwrap();
/// assert!(SEEN.lock().unwrap().contains(&emulator.client_secret()));
/// # }
/// ```
pub fn observe_secrets(observer: fn(&str, &str)) -> bool {
    SECRET_OBSERVER.set(observer).is_ok()
}

/// Tells the observer, if any, of `secret`.
pub(crate) fn observed(kind: &str, secret: &str) {
    if let Some(observer) = SECRET_OBSERVER.get()
        && !secret.is_empty()
    {
        observer(kind, secret);
    }
}

/// A fault the next token request of a provider meets instead of (or before) its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer normally, after this delay.
    Delay(Duration),
    /// Answer with this status and body, and a `Retry-After` in seconds if given.
    Status {
        /// The HTTP status.
        status: u16,
        /// `Retry-After`, in seconds.
        retry_after: Option<u64>,
        /// The body (as the provider would send it, or anything else).
        body: String,
    },
    /// Answer `200` with this body (truncated JSON, HTML, wrong types, ...).
    Body(String),
    /// Answer `200` with a body of this many bytes.
    Huge(usize),
    /// Close the connection without answering.
    Drop,
    /// Never answer.
    Hang,
}

/// Settings of an [`Emulator`]; see [`Emulator::builder`].
#[derive(Clone, Debug)]
pub struct EmulatorBuilder {
    tls: Option<Arc<rustls::ServerConfig>>,
    client_id: String,
    client_secret: String,
    tenant: String,
    app_id_uri: String,
    roles: Vec<String>,
    token_lifetime: Duration,
    token_delay: Duration,
}

impl EmulatorBuilder {
    /// The client id every provider accepts. Default: `demo-client`.
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = id.into();
        self
    }

    /// The client secret every provider accepts. Default: `demo-secret`.
    pub fn client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = secret.into();
        self
    }

    /// The Kontrolle+ app id URI (scope `<it>/.default`, token `aud`). Default:
    /// `api://kontrolle-plus`.
    pub fn app_id_uri(mut self, uri: impl Into<String>) -> Self {
        self.app_id_uri = uri.into();
        self
    }

    /// The roles Kontrolle+ tokens carry. Default: `["ProviderApi.Access"]`.
    pub fn roles<I: IntoIterator<Item = S>, S: Into<String>>(mut self, roles: I) -> Self {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// The lifetime of issued tokens (`expires_in`). Default: one hour.
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// How long every token request waits before it is answered (a slow token endpoint, for
    /// every request rather than the next one as [`Fault::Delay`]). Default: none.
    pub fn token_delay(mut self, delay: Duration) -> Self {
        self.token_delay = delay;
        self
    }

    /// Serves HTTPS with this certificate chain and key (PEM), instead of plain HTTP. URLs then
    /// name the host `localhost`, which the certificate must cover.
    ///
    /// ```
    /// use tower_bearer_emulator::Emulator;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let emulator = Emulator::builder()
    ///     .tls(
    ///         include_str!("../fixtures/server-cert.pem"),
    ///         include_str!("../fixtures/server-key.pem"),
    ///     )
    ///     .unwrap()
    ///     .start()
    ///     .await
    ///     .unwrap();
    /// assert!(emulator.token_url(tower_bearer_emulator::Provider::Kpn).starts_with("https://localhost:"));
    /// # }
    /// ```
    pub fn tls(mut self, cert_chain_pem: &str, key_pem: &str) -> std::io::Result<Self> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let invalid =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_owned());
        let certs = CertificateDer::pem_slice_iter(cert_chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| invalid("the certificate chain is not PEM"))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|_| invalid("the private key is not PEM"))?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(&e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid(&e.to_string()))?;
        self.tls = Some(Arc::new(config));
        Ok(self)
    }

    /// Starts the emulator on `127.0.0.1`, on a free port.
    pub async fn start(self) -> std::io::Result<Emulator> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let base = match self.tls {
            Some(_) => format!("https://localhost:{}", addr.port()),
            None => format!("http://{addr}"),
        };
        let tls = self.tls.clone();
        observed("client_secret", &self.client_secret);
        let state = Arc::new(State {
            base,
            addr,
            config: Mutex::new(self),
            issued: Mutex::default(),
            faults: Mutex::default(),
            metadata_faults: Mutex::default(),
            token_requests: Default::default(),
            metadata_requests: Default::default(),
            api_requests: AtomicU64::new(0),
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server::serve(listener, tls, Arc::clone(&state), stopped));
        Ok(Emulator {
            state,
            stop: Some(stop),
            task,
        })
    }
}

/// What the protected API makes of a token ([`Emulator::check_token`]); the reason is what its
/// `error_description` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenCheck {
    /// `200`: a token the emulator issued for this provider, unexpired, not revoked.
    Accepted,
    /// `401`: unknown (never issued, or revoked), expired, another provider's, or (Kontrolle+)
    /// for another audience.
    Unauthorized(&'static str),
    /// `403`: a Kontrolle+ token without the `ProviderApi.Access` role.
    Forbidden(&'static str),
}

/// What the emulator knows about a token it issued.
#[derive(Clone, Debug)]
pub(crate) struct Issued {
    pub(crate) provider: Provider,
    pub(crate) expires_at: Instant,
    pub(crate) audience: String,
    pub(crate) roles: Vec<String>,
}

pub(crate) struct State {
    pub(crate) addr: SocketAddr,
    /// `http://127.0.0.1:<port>`, or `https://localhost:<port>` in TLS mode.
    pub(crate) base: String,
    /// Settings; locked briefly per request, never across `.await`.
    pub(crate) config: Mutex<EmulatorBuilder>,
    /// Tokens issued so far; locked briefly, never across `.await`.
    pub(crate) issued: Mutex<HashMap<String, Issued>>,
    /// Faults waiting for the next token requests; locked briefly, never across `.await`.
    pub(crate) faults: Mutex<HashMap<Provider, VecDeque<Fault>>>,
    /// Faults waiting for the next metadata requests; locked briefly, never across `.await`.
    pub(crate) metadata_faults: Mutex<HashMap<Provider, VecDeque<Fault>>>,
    pub(crate) token_requests: [AtomicU64; 3],
    pub(crate) metadata_requests: [AtomicU64; 3],
    pub(crate) api_requests: AtomicU64,
}

pub(crate) fn index(provider: Provider) -> usize {
    match provider {
        Provider::KontrollePlus => 0,
        Provider::ScreeningEagle => 1,
        Provider::Kpn => 2,
    }
}

/// A running emulator; it stops when dropped.
pub struct Emulator {
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Emulator {
    /// Settings, to start an emulator that differs from the default.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder {
            tls: None,
            client_id: "demo-client".to_owned(),
            client_secret: "demo-secret".to_owned(),
            tenant: "emulated-tenant".to_owned(),
            app_id_uri: "api://kontrolle-plus".to_owned(),
            roles: vec![PROVIDER_API_ACCESS_ROLE.to_owned()],
            token_lifetime: Duration::from_secs(3600),
            token_delay: Duration::ZERO,
        }
    }

    /// Starts an emulator with the default settings.
    pub async fn start() -> std::io::Result<Self> {
        Self::builder().start().await
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.state.addr
    }

    /// A provider's token endpoint.
    pub fn token_url(&self, provider: Provider) -> String {
        let base = &self.state.base;
        match provider {
            Provider::KontrollePlus => format!("{}/oauth2/v2.0/token", self.authority()),
            Provider::ScreeningEagle => {
                format!(
                    "{}{}",
                    self.screening_eagle_base_url(),
                    SCREENING_EAGLE_TOKEN_PATH
                )
            }
            Provider::Kpn => format!("{base}/kpn/oauth/client_credential/accesstoken"),
        }
    }

    /// The Kontrolle+ authority (`<base>/kontrolle/<tenant>`).
    pub fn authority(&self) -> String {
        let tenant = self.config().tenant;
        format!("{}/kontrolle/{tenant}", self.state.base)
    }

    /// A provider's issuer identifier, whose metadata names its token endpoint: the
    /// Kontrolle+ authority, the Screening Eagle ID base URL, `<base>/kpn`.
    ///
    /// ```
    /// use tower_bearer_emulator::{Emulator, Provider};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let emulator = Emulator::start().await.unwrap();
    /// assert_eq!(emulator.issuer(Provider::KontrollePlus), emulator.authority());
    /// assert_eq!(emulator.metadata_requests(Provider::KontrollePlus), 0);
    /// # }
    /// ```
    pub fn issuer(&self, provider: Provider) -> String {
        match provider {
            Provider::KontrollePlus => self.authority(),
            Provider::ScreeningEagle => self.screening_eagle_base_url(),
            Provider::Kpn => format!("{}/kpn", self.state.base),
        }
    }

    /// Requests for `provider`'s issuer metadata (answered or not).
    pub fn metadata_requests(&self, provider: Provider) -> u64 {
        self.state.metadata_requests[index(provider)].load(Ordering::SeqCst)
    }

    /// Queues `fault` for the next request of `provider`'s issuer metadata (each used once,
    /// in order); [`Fault::Body`] serves other metadata.
    pub fn inject_metadata(&self, provider: Provider, fault: Fault) {
        let mut faults = self
            .state
            .metadata_faults
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        faults.entry(provider).or_default().push_back(fault);
    }

    /// The Screening Eagle ID base URL.
    pub fn screening_eagle_base_url(&self) -> String {
        format!("{}/screening-eagle", self.state.base)
    }

    /// A URL of the protected API that accepts `provider`'s tokens.
    pub fn api_url(&self, provider: Provider, path: &str) -> String {
        format!(
            "{}/api/{}/{}",
            self.state.base,
            provider.as_str(),
            path.trim_start_matches('/')
        )
    }

    /// The client id every provider accepts.
    pub fn client_id(&self) -> String {
        self.config().client_id
    }

    /// The client secret every provider accepts.
    pub fn client_secret(&self) -> String {
        self.config().client_secret
    }

    /// The Kontrolle+ app id URI.
    pub fn app_id_uri(&self) -> String {
        self.config().app_id_uri
    }

    /// Token requests `provider` has received (answered or not).
    pub fn token_requests(&self, provider: Provider) -> u64 {
        self.state.token_requests[index(provider)].load(Ordering::SeqCst)
    }

    /// Requests the protected API has received.
    pub fn api_requests(&self) -> u64 {
        self.state.api_requests.load(Ordering::SeqCst)
    }

    /// Queues `fault` for `provider`'s next token request (each fault is used once, in order).
    pub fn inject(&self, provider: Provider, fault: Fault) {
        let mut faults = self.state.faults.lock().unwrap_or_else(|p| p.into_inner());
        faults.entry(provider).or_default().push_back(fault);
    }

    /// Changes the lifetime of tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.state
            .config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .token_lifetime = lifetime;
    }

    /// Changes how long every token request waits before it is answered (see
    /// [`EmulatorBuilder::token_delay`]); requests already waiting keep their delay.
    pub fn set_token_delay(&self, delay: Duration) {
        self.state
            .config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .token_delay = delay;
    }

    /// Revokes every token issued so far: the protected API answers `401` to each of them from
    /// now on (as to an unknown token), as a provider does after a key rollover or an admin's
    /// revocation. Tokens issued later are good. Returns how many were revoked.
    ///
    /// ```
    /// use tower_bearer_emulator::Emulator;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let emulator = Emulator::start().await.unwrap();
    /// assert_eq!(emulator.revoke_all(), 0);
    /// # }
    /// ```
    pub fn revoke_all(&self) -> usize {
        let mut issued = self.state.issued.lock().unwrap_or_else(|p| p.into_inner());
        let revoked = issued.len();
        issued.clear();
        revoked
    }

    /// What the protected API would answer to `token` for `provider`'s API, without a request
    /// (not counted in [`api_requests`](Self::api_requests)): for a test server of another
    /// protocol (a gRPC server's interceptor, say) that accepts the emulator's tokens.
    ///
    /// ```
    /// use tower_bearer_emulator::{Emulator, Provider, TokenCheck};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let emulator = Emulator::start().await.unwrap();
    /// assert!(matches!(
    ///     emulator.check_token(Provider::Kpn, "never-issued"),
    ///     TokenCheck::Unauthorized("unknown token")
    /// ));
    /// # }
    /// ```
    pub fn check_token(&self, provider: Provider, token: &str) -> TokenCheck {
        server::judge(&self.state, provider, token)
    }

    /// Changes the roles of Kontrolle+ tokens issued from now on.
    pub fn set_roles<I: IntoIterator<Item = S>, S: Into<String>>(&self, roles: I) {
        self.state
            .config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .roles = roles.into_iter().map(Into::into).collect();
    }

    fn config(&self) -> EmulatorBuilder {
        self.state
            .config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.state.addr)
            .finish_non_exhaustive()
    }
}
