//! What the provider builders share: the client id, the client credential, the token URL or
//! the base URL it is found below. Held as given (the secret as a `SecretString`), checked and
//! formed into the token request at `build()`, with errors that name the setting.

use std::borrow::Cow;
use std::fmt;
#[cfg(feature = "private-key-jwt")]
use std::sync::Arc;

use secrecy::SecretString;

use super::{Provider, invalid, missing};
use crate::error::TokenError;
use crate::oauth::request::redact_userinfo;
use crate::oauth::{ClientAuth, ClientCredentials, ClientCredentialsRequest, Transport};

/// The settings every provider builder has.
#[derive(Clone, Default)]
pub(crate) struct BuilderCore {
    /// The full token URL; wins over `base_url` and the provider's default.
    pub(crate) token_url: Option<String>,
    /// The base URL the provider's token path goes below (Kontrolle+'s authority, Screening
    /// Eagle ID's base URL).
    pub(crate) base_url: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) credential: Option<Credential>,
}

/// How the client proves who it is.
#[derive(Clone)]
pub(crate) enum Credential {
    /// A client secret, sent as the provider's [`Spec::secret_as`] says.
    Secret(SecretString),
    /// A certificate's key signing `private_key_jwt` assertions.
    #[cfg(feature = "private-key-jwt")]
    Certificate(Arc<crate::oauth::assertion::JwtSigner>),
}

/// How a client secret is sent.
#[derive(Clone, Copy)]
pub(crate) enum SecretAs {
    /// `client_secret_post`.
    Post,
    /// `client_secret_basic`, RFC 6749 §2.3.1 encoding.
    Basic,
    /// `client_secret_basic`, raw RFC 7617 (a client id with `:` is refused).
    BasicRaw,
}

/// A provider's rules for the shared settings.
pub(crate) struct Spec {
    pub(crate) provider: Provider,
    /// The token URL when neither a token URL nor a base URL is set.
    pub(crate) default_url: Option<&'static str>,
    /// The setter of the base URL, and the token endpoint's path below it.
    pub(crate) below_base: Option<(&'static str, &'static str)>,
    /// The setting named, and what to set, when there is no URL at all.
    pub(crate) no_url: (&'static str, &'static str),
    pub(crate) secret_as: SecretAs,
    /// What to set when there is no credential.
    pub(crate) no_credential: &'static str,
}

/// The token request (to the token URL, asking for nothing yet) and the client
/// authentication, which the provider completes.
pub(crate) struct Parts {
    provider: Provider,
    pub(crate) request: ClientCredentialsRequest,
    pub(crate) auth: ClientAuth,
}

impl BuilderCore {
    /// Checks the settings and forms the token URL, in this order: the URL, the client id, the
    /// credential. The first one missing or unusable is the error.
    pub(crate) fn finish(self, spec: &Spec) -> Result<Parts, TokenError> {
        let provider = spec.provider;
        let (setting, url) = match (self.token_url, self.base_url, spec.below_base) {
            (Some(url), _, _) => ("token_url", url),
            (None, Some(base), Some((setter, path))) => {
                (setter, format!("{}{path}", base.trim_end_matches('/')))
            }
            (None, _, _) => match spec.default_url {
                Some(url) => ("token_url", url.to_owned()),
                None => return Err(missing(provider, spec.no_url.0, spec.no_url.1)),
            },
        };
        let request = ClientCredentialsRequest::new(&url).map_err(|e| {
            // The URL's own error never shows user information; it says what is wrong.
            let fix: Cow<'static, str> =
                e.hint().map_or(Cow::Borrowed("give an https:// URL"), |h| {
                    Cow::Owned(h.to_owned())
                });
            invalid(
                provider,
                setting,
                format!("is not usable: {}", e.message()),
                fix,
            )
        })?;
        let client_id = self.client_id.ok_or_else(|| {
            missing(
                provider,
                "client_id",
                "set the client id the provider gave you",
            )
        })?;
        let auth = match self.credential {
            None => return Err(missing(provider, "client_secret", spec.no_credential)),
            Some(Credential::Secret(secret)) => match spec.secret_as {
                SecretAs::Post => ClientAuth::secret_post(client_id, secret),
                SecretAs::Basic => ClientAuth::basic(
                    client_id,
                    secret,
                    crate::oauth::BasicEncoding::FormUrlEncoded,
                ),
                SecretAs::BasicRaw => ClientAuth::basic_raw(client_id, secret).map_err(|e| {
                    invalid(
                        provider,
                        "client_id",
                        format!("cannot be sent: {}", e.message()),
                        "use a client id without `:` (raw HTTP Basic cannot carry it)",
                    )
                })?,
            },
            #[cfg(feature = "private-key-jwt")]
            Some(Credential::Certificate(signer)) => {
                ClientAuth::private_key_jwt_shared(client_id, signer)
            }
        };
        Ok(Parts {
            provider,
            request,
            auth,
        })
    }

    /// The shared settings in a builder's `Debug`: URLs without user information, the
    /// credential by its kind only.
    pub(crate) fn debug_fields(&self, d: &mut fmt::DebugStruct<'_, '_>, base_setter: &str) {
        let url = |u: &Option<String>| u.as_deref().map(|u| redact_userinfo(u).into_owned());
        d.field("token_url", &url(&self.token_url));
        if !base_setter.is_empty() {
            d.field(base_setter, &url(&self.base_url));
        }
        d.field("client_id", &self.client_id).field(
            "credential",
            &self.credential.as_ref().map(|c| match c {
                Credential::Secret(_) => "client secret [redacted]",
                #[cfg(feature = "private-key-jwt")]
                Credential::Certificate(_) => "certificate",
            }),
        );
    }
}

impl Parts {
    /// The token source, labelled with the provider's name.
    pub(crate) fn into_source<T: Transport>(self, transport: T) -> ClientCredentials<T> {
        ClientCredentials::new(self.request, self.auth, transport)
            .label(self.provider.display_name())
    }
}
