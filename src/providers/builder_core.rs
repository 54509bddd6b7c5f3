//! What the provider builders share: the client id, the client credential, the token URL or
//! the base URL it is found below (or, for the generic flow, the issuer whose metadata names
//! it), whether plain `http://` may reach a host that is not loopback. Held as given (the
//! secret as a `SecretString`), checked and formed into the token request at `build()`, with
//! errors that name the setting and the fix.

use std::borrow::Cow;
use std::fmt;
#[cfg(feature = "private-key-jwt")]
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::{Provider, invalid, missing};
use crate::error::{TokenError, sanitize};
use crate::oauth::client::Discovery;
use crate::oauth::discovery::{check_issuer, well_known};
use crate::oauth::request::{illegal_scope_char, is_plain_http_to_remote, redact_userinfo};
use crate::oauth::{ClientAuth, ClientCredentials, ClientCredentialsRequest, Transport};

/// What to do about a plain `http://` URL to a host that is not loopback, in a builder's
/// words (the configuration says it in its own).
const INSECURE_HTTP_FIX: &str = "use https:// (the client secret would travel in clear text), or call \
     `.allow_insecure_http(true)` for a trusted network";

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
    /// The generic flow's issuer, whose metadata names the token endpoint (discovery).
    pub(crate) issuer: Option<String>,
    /// Accept plain `http://` to any host (token URL, issuer, discovered endpoint).
    pub(crate) allow_insecure_http: bool,
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
    /// Whether the secret's method was left to the issuer's metadata: `client_secret_basic`,
    /// or `client_secret_post` if its token endpoint does not take Basic.
    pub(crate) method_from_metadata: bool,
    /// What to set when there is no credential.
    pub(crate) no_credential: &'static str,
}

/// The token request (to the token URL, asking for nothing yet) and the client
/// authentication, which the provider completes.
pub(crate) struct Parts {
    provider: Provider,
    pub(crate) request: ClientCredentialsRequest,
    pub(crate) auth: ClientAuth,
    /// Set when the token endpoint is to be discovered from the issuer.
    discovery: Option<Discovery>,
}

impl BuilderCore {
    /// Checks the settings and forms the token URL, in this order: the URL, the client id, the
    /// credential. The first one missing or unusable is the error.
    pub(crate) fn finish(self, spec: &Spec) -> Result<Parts, TokenError> {
        let provider = spec.provider;
        let allow = self.allow_insecure_http;
        if self.token_url.is_some() && self.issuer.is_some() {
            return Err(invalid(
                provider,
                "token_url",
                "and `issuer` are both set",
                "set one: the token URL, or the issuer to discover it from",
            ));
        }
        let (request, issuer) = match self.issuer {
            Some(issuer) => {
                let uri = check_issuer(&issuer, allow).map_err(|e| {
                    let fix = if is_insecure(&issuer, allow) {
                        Cow::Borrowed(INSECURE_HTTP_FIX)
                    } else {
                        Cow::Owned(
                            e.hint()
                                .unwrap_or("give the issuer's https:// URL")
                                .to_owned(),
                        )
                    };
                    invalid(
                        provider,
                        "issuer",
                        format!("is not usable: {}", e.message()),
                        fix,
                    )
                })?;
                // The template: scopes and parameters go on it; its URL, the issuer, is
                // replaced by the discovered token endpoint.
                let request = ClientCredentialsRequest::new_allow_insecure_http(&issuer)?;
                (request, Some((issuer, uri)))
            }
            None => (self.request(spec)?, None),
        };
        let client_id = match self.client_id {
            None => {
                return Err(missing(
                    provider,
                    "client_id",
                    "set the client id the provider gave you",
                ));
            }
            Some(id) if id.trim().is_empty() => {
                return Err(invalid(
                    provider,
                    "client_id",
                    "is empty",
                    "set the client id the provider gave you",
                ));
            }
            Some(id) => id,
        };
        let mut post_fallback = None;
        let auth = match self.credential {
            None => return Err(missing(provider, "client_secret", spec.no_credential)),
            Some(Credential::Secret(secret)) if secret.expose_secret().trim().is_empty() => {
                return Err(invalid(
                    provider,
                    "client_secret",
                    "is empty",
                    spec.no_credential,
                ));
            }
            Some(Credential::Secret(secret)) => match spec.secret_as {
                SecretAs::Post => ClientAuth::secret_post(client_id, secret),
                SecretAs::Basic => {
                    if spec.method_from_metadata && issuer.is_some() {
                        post_fallback =
                            Some(ClientAuth::secret_post(client_id.clone(), secret.clone()));
                    }
                    ClientAuth::basic(
                        client_id,
                        secret,
                        crate::oauth::BasicEncoding::FormUrlEncoded,
                    )
                }
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
        let discovery = issuer.map(|(issuer, uri)| Discovery {
            urls: well_known(&uri),
            issuer,
            allow_insecure_http: allow,
            post_fallback,
            resolved: tokio::sync::OnceCell::new(),
        });
        Ok(Parts {
            provider,
            request,
            auth,
            discovery,
        })
    }

    /// The token request to the token URL: given, below the base URL, or the provider's.
    fn request(&self, spec: &Spec) -> Result<ClientCredentialsRequest, TokenError> {
        let provider = spec.provider;
        let (setting, url) = match (&self.token_url, &self.base_url, spec.below_base) {
            (Some(url), _, _) => ("token_url", url.clone()),
            (None, Some(base), Some((setter, path))) => {
                (setter, format!("{}{path}", base.trim_end_matches('/')))
            }
            (None, _, _) => match spec.default_url {
                Some(url) => ("token_url", url.to_owned()),
                None => return Err(missing(provider, spec.no_url.0, spec.no_url.1)),
            },
        };
        let allow = self.allow_insecure_http;
        let request = if allow {
            ClientCredentialsRequest::new_allow_insecure_http(&url)
        } else {
            ClientCredentialsRequest::new(&url)
        };
        request.map_err(|e| {
            // The URL's own error never shows user information; it says what is wrong.
            let fix: Cow<'static, str> = if is_insecure(&url, allow) {
                Cow::Borrowed(INSECURE_HTTP_FIX)
            } else {
                e.hint().map_or(Cow::Borrowed("give an https:// URL"), |h| {
                    Cow::Owned(h.to_owned())
                })
            };
            invalid(
                provider,
                setting,
                format!("is not usable: {}", e.message()),
                fix,
            )
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
        if self.issuer.is_some() {
            d.field("issuer", &url(&self.issuer));
        }
        if self.allow_insecure_http {
            d.field("allow_insecure_http", &true);
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
    /// Asks for `scopes`, each checked against RFC 6749 §3.3 (`setting` is named if one holds
    /// a character it does not allow).
    pub(crate) fn scopes<I>(mut self, setting: &'static str, scopes: I) -> Result<Self, TokenError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        for scope in scopes {
            for scope in scope.as_ref().split_whitespace() {
                if let Some(c) = illegal_scope_char(scope) {
                    return Err(invalid(
                        self.provider,
                        setting,
                        format!(
                            "`{}` holds {c:?}, which RFC 6749 §3.3 does not allow in a scope",
                            sanitize(scope)
                        ),
                        "write each scope as the provider documents it: printable ASCII \
                         without spaces (which separate scopes), `\"` or `\\`",
                    ));
                }
                self.request = self.request.scope(scope);
            }
        }
        Ok(self)
    }

    /// The token source, labelled with the provider's name.
    pub(crate) fn into_source<T: Transport>(self, transport: T) -> ClientCredentials<T> {
        let source = ClientCredentials::new(self.request, self.auth, transport)
            .label(self.provider.display_name());
        match self.discovery {
            Some(discovery) => source.discover(discovery),
            None => source,
        }
    }
}

/// Whether `url` is plain `http://` to a host that is not loopback, and that is not allowed.
fn is_insecure(url: &str, allow: bool) -> bool {
    !allow && is_plain_http_to_remote(url)
}
