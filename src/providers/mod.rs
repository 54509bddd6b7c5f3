//! The providers we support, each a [`ClientCredentials`](crate::oauth::ClientCredentials)
//! token source set up in a few lines with that provider's own defaults:
//!
//! - [`KontrollePlus`]: Entra ID-style; `<app-id-uri>/.default`, secret or certificate,
//!   claims checked before first use (`aud`, `roles` contains `ProviderApi.Access`, `exp`);
//! - [`ScreeningEagle`]: HTTP Basic (raw RFC 7617), space-separated scopes, id and refresh
//!   tokens kept;
//! - [`Kpn`]: KPN API Store (Apigee): `grant_type` in the query string, string-typed JSON.
//!
//! Any other RFC 6749 server: [`Generic`], with the token URL or the issuer whose metadata
//! names it (RFC 8414 discovery). [`Provider`] names them all, with the names configuration
//! files use.
//!
//! The builders share their common settings (client id, client secret, token URL or base URL,
//! `allow_insecure_http`): each is set the same way on each, checked at `build()`, where the
//! token URL is formed. A setting that is missing or unusable fails `build()` with a configuration error
//! that names it and says what to set; its source is a [`SettingError`].
//!
//! ```
//! use tower_bearer::providers::ScreeningEagle;
//! # use tower_bearer::oauth::ServiceTransport;
//! # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
//! # });
//!
//! // `http_client`: any Tower HTTP service (hyper-util, reqwest through `ReqwestService`...).
//! let source = ScreeningEagle::new()
//!     .base_url("https://id.screeningeagle.com")
//!     .client_id("my-client")
//!     .client_secret("from your secret store")
//!     .build(ServiceTransport::new(http_client))
//!     .unwrap();
//! assert_eq!(source.auth().method(), "client_secret_basic");
//! ```

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use crate::error::TokenError;

/// The setters every provider builder has, written once: each forwards to the builder's
/// `core` (a `BuilderCore`).
macro_rules! shared_setters {
    () => {
        /// The full token URL, instead of the provider's default or base URL (a proxy, a test
        /// double). Checked at `build()`: `https://`, or `http://` to a loopback host (or to
        /// any host with [`allow_insecure_http`](Self::allow_insecure_http)).
        ///
        /// ```
        /// use tower_bearer::providers::Kpn; // every provider builder has it
        ///
        /// # use tower_bearer::oauth::ServiceTransport;
        /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
        /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
        /// # });
        /// let source = Kpn::new()
        ///     .token_url("https://apigee-proxy.internal.example/oauth/token")
        ///     .client_id("id")
        ///     .client_secret("secret")
        ///     .build(ServiceTransport::new(http_client))
        ///     .unwrap();
        /// assert_eq!(source.request().token_url(), "https://apigee-proxy.internal.example/oauth/token");
        /// ```
        pub fn token_url(mut self, url: impl Into<String>) -> Self {
            self.core.token_url = Some(url.into());
            self
        }

        /// Accepts plain `http://` to a host that is not loopback (`http://` to `localhost` and
        /// loopback addresses is always accepted). Only for a network you trust: the client
        /// secret would travel in clear text. Default: off.
        ///
        /// ```
        /// use tower_bearer::providers::Kpn; // every provider builder has it
        ///
        /// # use tower_bearer::oauth::ServiceTransport;
        /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
        /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
        /// # });
        /// let kpn = || Kpn::new().token_url("http://gateway.internal/token").client_id("id").client_secret("s");
        /// assert!(kpn().build(ServiceTransport::new(http_client.clone())).is_err(), "plain http to a remote host");
        /// assert!(kpn().allow_insecure_http(true).build(ServiceTransport::new(http_client)).is_ok());
        /// ```
        pub fn allow_insecure_http(mut self, allow: bool) -> Self {
            self.core.allow_insecure_http = allow;
            self
        }

        /// The client id the provider gave you.
        ///
        /// ```
        /// use tower_bearer::providers::Kpn; // every provider builder has it
        ///
        /// # use tower_bearer::oauth::ServiceTransport;
        /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
        /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
        /// # });
        /// let source = Kpn::new()
        ///     .client_id("APP_CLIENT_ID")
        ///     .client_secret("secret")
        ///     .build(ServiceTransport::new(http_client))
        ///     .unwrap();
        /// assert_eq!(source.auth().client_id(), "APP_CLIENT_ID");
        /// ```
        pub fn client_id(mut self, id: impl Into<String>) -> Self {
            self.core.client_id = Some(id.into());
            self
        }

        /// The client secret, sent the way this provider expects (held as a secret: wiped on
        /// drop, never shown).
        ///
        /// ```
        /// use tower_bearer::providers::Kpn; // every provider builder has it
        ///
        /// # use tower_bearer::oauth::ServiceTransport;
        /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
        /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
        /// # });
        /// let builder = Kpn::new().client_id("id").client_secret("s3cret-from-vault");
        /// assert!(!format!("{builder:?}").contains("s3cret"));
        /// let source = builder.build(ServiceTransport::new(http_client)).unwrap();
        /// assert_eq!(source.auth().method(), "client_secret_post", "as KPN expects it");
        /// ```
        pub fn client_secret(self, secret: impl Into<String>) -> Self {
            self.secret(crate::token::secret_from(secret.into()))
        }

        pub(crate) fn secret(mut self, secret: secrecy::SecretString) -> Self {
            self.core.credential = Some(crate::providers::builder_core::Credential::Secret(secret));
            self
        }
    };
}

pub(crate) mod builder_core;
mod generic;
mod kontrolle_plus;
mod kpn;
mod screening_eagle;

pub use generic::{AuthMethod, Generic};
pub use kontrolle_plus::{KontrollePlus, PROVIDER_API_ACCESS_ROLE};
pub use kpn::{KPN_TOKEN_URL, Kpn};
pub use screening_eagle::{SCREENING_EAGLE_TOKEN_PATH, ScreeningEagle};

/// A provider, by the one name the crate, its configuration and its emulator use.
///
/// The loopback emulator (`tower-bearer-emulator`) has an enum of its own, since it does not
/// depend on this crate; a test pins that both name the same providers with the same names.
///
/// ```
/// use tower_bearer::providers::Provider;
///
/// let provider: Provider = "screening-eagle".parse().unwrap();
/// assert_eq!(provider, Provider::ScreeningEagle);
/// assert_eq!(provider.as_str(), "screening-eagle");
/// assert_eq!(provider.to_string(), "Screening Eagle ID");
/// assert!("okta".parse::<Provider>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// Kontrolle+ Provider API (Entra ID-style): [`KontrollePlus`]. Named `kontrolle`.
    #[serde(rename = "kontrolle")]
    KontrollePlus,
    /// Screening Eagle ID: [`ScreeningEagle`]. Named `screening-eagle`.
    ScreeningEagle,
    /// KPN API Store (Apigee): [`Kpn`]. Named `kpn`.
    Kpn,
    /// Any RFC 6749 server: [`Generic`]. Named `generic`.
    Generic,
}

impl Provider {
    /// Every provider.
    pub const ALL: [Provider; 4] = [
        Self::KontrollePlus,
        Self::ScreeningEagle,
        Self::Kpn,
        Self::Generic,
    ];

    /// The name configuration uses (`provider = "kontrolle"`, `<PREFIX>_PROVIDER=kpn`), which
    /// [`FromStr`] reads.
    ///
    /// ```
    /// use tower_bearer::providers::Provider;
    ///
    /// assert_eq!(Provider::KontrollePlus.as_str(), "kontrolle");
    /// assert_eq!("kontrolle".parse::<Provider>().unwrap(), Provider::KontrollePlus);
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::KontrollePlus => "kontrolle",
            Self::ScreeningEagle => "screening-eagle",
            Self::Kpn => "kpn",
            Self::Generic => "generic",
        }
    }

    /// The name people use, as `Display` shows it and as token sources are labelled in traces:
    /// `Kontrolle+`, `Screening Eagle ID`, `KPN API Store`, `OAuth 2.0`.
    ///
    /// ```
    /// use tower_bearer::providers::Provider;
    ///
    /// assert_eq!(Provider::Kpn.display_name(), "KPN API Store");
    /// assert_eq!(Provider::Generic.to_string(), "OAuth 2.0");
    /// ```
    pub fn display_name(self) -> &'static str {
        match self {
            Self::KontrollePlus => "Kontrolle+",
            Self::ScreeningEagle => "Screening Eagle ID",
            Self::Kpn => "KPN API Store",
            Self::Generic => "OAuth 2.0",
        }
    }

    /// `config::ProviderKind::Kontrolle`, as it was called.
    #[doc(hidden)]
    #[allow(non_upper_case_globals)]
    #[deprecated(since = "0.2.0", note = "use `providers::Provider::KontrollePlus`")]
    pub const Kontrolle: Provider = Provider::KontrollePlus;
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_name())
    }
}

impl FromStr for Provider {
    type Err = TokenError;

    /// Reads [`as_str`](Self::as_str)'s names; any other is a configuration error listing
    /// them.
    fn from_str(name: &str) -> Result<Self, TokenError> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == name)
            .ok_or_else(|| {
                TokenError::configuration(
                    format!("`{}` is not a provider", crate::error::sanitize(name)),
                    "use kontrolle, screening-eagle, kpn or generic",
                )
            })
    }
}

/// A provider builder's setting that is missing or unusable at `build()`: the source of the
/// configuration error `build()` fails with, naming the setter.
///
/// ```
/// use std::error::Error;
/// use tower_bearer::providers::{Kpn, Provider, SettingError};
/// # use tower_bearer::oauth::ServiceTransport;
/// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
/// # });
///
/// let err = Kpn::new().client_id("id").build(ServiceTransport::new(http_client)).unwrap_err();
/// assert_eq!(err.to_string(), "token error (configuration): KPN API Store: `client_secret` is not set; \
///     hint: set the client secret (from a secret store)");
/// let setting = err.source().unwrap().downcast_ref::<SettingError>().unwrap();
/// assert_eq!((setting.provider(), setting.setting()), (Provider::Kpn, "client_secret"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingError {
    provider: Provider,
    setting: &'static str,
    problem: String,
}

impl SettingError {
    /// The provider whose builder failed.
    ///
    /// ```
    /// use std::error::Error;
    /// use tower_bearer::providers::{Provider, ScreeningEagle, SettingError};
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    ///
    /// let err = ScreeningEagle::new().client_id("id").client_secret("s")
    ///     .build(ServiceTransport::new(http_client)).unwrap_err();
    /// let setting = err.source().unwrap().downcast_ref::<SettingError>().unwrap();
    /// assert_eq!(setting.provider(), Provider::ScreeningEagle);
    /// ```
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The setter that needs attention (`client_id`, `client_secret`, `token_url`, `issuer`,
    /// `authority`, `base_url`, `app_id_uri`, `scope`, `auth_method`).
    ///
    /// ```
    /// use std::error::Error;
    /// use tower_bearer::providers::{ScreeningEagle, SettingError};
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    ///
    /// let err = ScreeningEagle::new().client_id("id").client_secret("s")
    ///     .build(ServiceTransport::new(http_client)).unwrap_err();
    /// let setting = err.source().unwrap().downcast_ref::<SettingError>().unwrap();
    /// assert_eq!(setting.setting(), "base_url");
    /// ```
    pub fn setting(&self) -> &'static str {
        self.setting
    }

    /// What is wrong with it: `is not set`, or why its value is not usable.
    ///
    /// ```
    /// use std::error::Error;
    /// use tower_bearer::providers::{Generic, SettingError};
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    ///
    /// let err = Generic::new().token_url("ftp://as.example/token").client_id("id").client_secret("s")
    ///     .build(ServiceTransport::new(http_client)).unwrap_err();
    /// let setting = err.source().unwrap().downcast_ref::<SettingError>().unwrap();
    /// assert_eq!(setting.setting(), "token_url");
    /// assert!(setting.problem().contains("ftp"), "{}", setting.problem());
    /// ```
    pub fn problem(&self) -> &str {
        &self.problem
    }

    /// The configuration error for this setting, with `fix` as its hint.
    pub(crate) fn into_error(self, fix: impl Into<std::borrow::Cow<'static, str>>) -> TokenError {
        TokenError::configuration(self.to_string(), fix).with_source(self)
    }
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: `{}` {}", self.provider, self.setting, self.problem)
    }
}

impl std::error::Error for SettingError {}

/// A missing required setting.
pub(crate) fn missing(provider: Provider, setting: &'static str, fix: &'static str) -> TokenError {
    invalid(provider, setting, "is not set", fix)
}

/// A setting whose value cannot be used.
pub(crate) fn invalid(
    provider: Provider,
    setting: &'static str,
    problem: impl Into<String>,
    fix: impl Into<std::borrow::Cow<'static, str>>,
) -> TokenError {
    SettingError {
        provider,
        setting,
        problem: problem.into(),
    }
    .into_error(fix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProviderConfig;

    const SECRET: &str = "Pr0vider-S3cret";

    #[test]
    fn debug_of_builders_and_config_never_shows_the_secret() {
        let shown = [
            format!("{:?}", KontrollePlus::new().client_secret(SECRET)),
            format!("{:#?}", KontrollePlus::new().client_secret(SECRET)),
            format!("{:?}", Kpn::new().client_secret(SECRET)),
            format!("{:#?}", Kpn::new().client_id("id").client_secret(SECRET)),
            format!("{:?}", ScreeningEagle::new().client_secret(SECRET)),
            format!("{:#?}", ScreeningEagle::new().client_secret(SECRET)),
            format!(
                "{:#?}",
                Generic::new()
                    .issuer("https://as.example")
                    .allow_insecure_http(true)
                    .client_secret(SECRET)
            ),
        ];
        for shown in shown {
            assert!(!shown.contains(SECRET), "{shown}");
            assert!(!shown.contains("sha256"), "{shown}");
        }
        for text in [
            format!(r#"{{"provider":"kpn","client_id":"id","client_secret":"{SECRET}"}}"#),
            format!(
                r#"{{"provider":"kpn","client_id":"id","client_secret":{{"value":"{SECRET}"}}}}"#
            ),
            format!(
                r#"{{"provider":"kpn","client_id":"id","client_secret":{{"token":"{SECRET}"}}}}"#
            ),
        ] {
            let config: ProviderConfig = serde_json::from_str(&text).unwrap();
            let shown = format!("{config:?} {config:#?}");
            assert!(!shown.contains(SECRET), "{shown}");
        }
    }
}
