use std::fmt;

use secrecy::SecretString;

use crate::error::TokenError;
use crate::oauth::{
    ClaimsCheck, ClientAuth, ClientCredentials, ClientCredentialsRequest, Transport,
};
use crate::token::secret_from;

use super::missing;

/// The app role the Kontrolle+ Provider API requires.
pub const PROVIDER_API_ACCESS_ROLE: &str = "ProviderApi.Access";

/// Kontrolle+ Provider API (Microsoft Entra ID v2 endpoints).
///
/// - token URL: given, or `<authority>/oauth2/v2.0/token`;
/// - scope: exactly `<app-id-uri>/.default`;
/// - client authentication: the secret in the form body (`client_secret_post`), or a
///   certificate (`private_key_jwt`, feature `private-key-jwt`);
/// - before first use each token's claims are checked (unless turned off): `aud` is the
///   expected audience (by default the app id URI; add the application id for v2 tokens),
///   `roles` contains `ProviderApi.Access`, `exp` is in the future.
///
/// ```
/// use tower_bearer::providers::KontrollePlus;
/// # use tower_bearer::oauth::ServiceTransport;
/// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
/// # });
///
/// let source = KontrollePlus::new()
///     .authority("https://login.microsoftonline.com/contoso.onmicrosoft.com")
///     .client_id("6731de76-14a6-49ae-97bc-6eba6914391e")
///     .client_secret(std::env::var("CLIENT_SECRET").unwrap_or_default())
///     .app_id_uri("api://kontrolle-plus")
///     .build(ServiceTransport::new(http_client))
///     .unwrap();
/// # let _ = source;
/// ```
#[derive(Default)]
pub struct KontrollePlus {
    token_url: Option<String>,
    authority: Option<String>,
    client_id: Option<String>,
    auth: Option<ClientAuthKind>,
    app_id_uri: Option<String>,
    audiences: Vec<String>,
    role: Option<String>,
    check_claims: Option<bool>,
}

enum ClientAuthKind {
    Secret(SecretString),
    #[cfg(feature = "private-key-jwt")]
    Certificate(Box<crate::oauth::assertion::JwtSigner>),
}

impl KontrollePlus {
    /// An empty configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// The token endpoint, as given by the Kontrolle+ team.
    pub fn token_url(mut self, url: impl Into<String>) -> Self {
        self.token_url = Some(url.into());
        self
    }

    /// The authority base URL (`https://login.microsoftonline.com/<tenant>`); the token URL is
    /// then `<authority>/oauth2/v2.0/token`.
    pub fn authority(mut self, authority: impl Into<String>) -> Self {
        self.authority = Some(authority.into());
        self
    }

    /// The client (application) id.
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }

    /// Authenticates with a client secret (sent in the form body; held as a secret: wiped on
    /// drop, never shown).
    pub fn client_secret(self, secret: impl Into<String>) -> Self {
        self.secret(secret_from(secret.into()))
    }

    pub(crate) fn secret(mut self, secret: SecretString) -> Self {
        self.auth = Some(ClientAuthKind::Secret(secret));
        self
    }

    /// Authenticates with a certificate-based client assertion (`private_key_jwt`); give the
    /// signer its certificate so the header carries `x5t#S256`.
    #[cfg(feature = "private-key-jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "private-key-jwt")))]
    pub fn certificate(mut self, signer: crate::oauth::assertion::JwtSigner) -> Self {
        self.auth = Some(ClientAuthKind::Certificate(Box::new(signer)));
        self
    }

    /// The Provider API's application id URI; the scope is `<app-id-uri>/.default`.
    pub fn app_id_uri(mut self, uri: impl Into<String>) -> Self {
        self.app_id_uri = Some(uri.into());
        self
    }

    /// An accepted `aud` (repeatable). Default: the app id URI. Entra v2 tokens carry the
    /// application id instead: add it here.
    pub fn expected_audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// The role every token must carry. Default: [`PROVIDER_API_ACCESS_ROLE`].
    pub fn required_role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    /// Whether to check each token's claims before first use. Default: yes.
    pub fn check_claims(mut self, check: bool) -> Self {
        self.check_claims = Some(check);
        self
    }

    /// The token source; fails with a configuration error naming what is missing.
    pub fn build<T: Transport>(self, transport: T) -> Result<ClientCredentials<T>, TokenError> {
        const NAME: &str = "Kontrolle+";
        let token_url = match (self.token_url, self.authority) {
            (Some(url), _) => url,
            (None, Some(authority)) => {
                format!("{}/oauth2/v2.0/token", authority.trim_end_matches('/'))
            }
            (None, None) => {
                return Err(missing(
                    NAME,
                    "token_url",
                    "set the token endpoint, or the authority (https://login.microsoftonline.com/<tenant>)",
                ));
            }
        };
        let client_id = self.client_id.ok_or_else(|| {
            missing(
                NAME,
                "client_id",
                "set the client id the Kontrolle+ team gave you",
            )
        })?;
        let app_id_uri = self.app_id_uri.ok_or_else(|| {
            missing(
                NAME,
                "app_id_uri",
                "set the Provider API's app id URI (the scope is `<app-id-uri>/.default`)",
            )
        })?;
        let app_id_uri = app_id_uri
            .trim_end_matches("/.default")
            .trim_end_matches('/')
            .to_owned();
        let auth = match self.auth {
            Some(ClientAuthKind::Secret(secret)) => ClientAuth::secret_post(client_id, secret),
            #[cfg(feature = "private-key-jwt")]
            Some(ClientAuthKind::Certificate(signer)) => {
                ClientAuth::private_key_jwt(client_id, *signer)
            }
            None => {
                return Err(missing(
                    NAME,
                    "client_secret",
                    "set the client secret (from a secret store), or a certificate",
                ));
            }
        };
        let request =
            ClientCredentialsRequest::new(&token_url)?.scope(format!("{app_id_uri}/.default"));
        let mut source = ClientCredentials::new(request, auth, transport).label(NAME);
        if self.check_claims.unwrap_or(true) {
            let mut check = ClaimsCheck::new().require_role(
                self.role
                    .unwrap_or_else(|| PROVIDER_API_ACCESS_ROLE.to_owned()),
            );
            if self.audiences.is_empty() {
                check = check.audience(app_id_uri);
            }
            for audience in self.audiences {
                check = check.audience(audience);
            }
            source = source.check_claims(check);
        }
        Ok(source)
    }
}

impl fmt::Debug for KontrollePlus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KontrollePlus")
            .field(
                "token_url",
                &self
                    .token_url
                    .as_deref()
                    .map(crate::oauth::request::redact_userinfo),
            )
            .field(
                "authority",
                &self
                    .authority
                    .as_deref()
                    .map(crate::oauth::request::redact_userinfo),
            )
            .field("client_id", &self.client_id)
            .field(
                "auth",
                &self.auth.as_ref().map(|a| match a {
                    ClientAuthKind::Secret(_) => "client_secret_post",
                    #[cfg(feature = "private-key-jwt")]
                    ClientAuthKind::Certificate(_) => "private_key_jwt",
                }),
            )
            .field("app_id_uri", &self.app_id_uri)
            .field("audiences", &self.audiences)
            .field("role", &self.role)
            .field("check_claims", &self.check_claims)
            .finish()
    }
}
