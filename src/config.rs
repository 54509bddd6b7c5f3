//! Provider configuration from serde (TOML, JSON, YAML, ...) or environment variables,
//! mirroring the Kontrolle+ runbook template: environment, authority, token endpoint, client
//! id, secret reference, scope, audience, required role.
//!
//! Secrets are never written in the configuration: it names an environment variable or a file
//! that holds the secret. An inline secret (`client_secret = "..."` or `{ value = "..." }`) is
//! refused unless explicitly allowed, and is never printed. Invalid configuration fails at build
//! time with an error that names the field and the fix, in the words of its source: a file's
//! keys (`scope = "..."`) or, from [`ProviderConfig::from_env`], the variables
//! (`PARTNER_SCOPE=...`).
//!
//! `provider = "generic"` is any RFC 6749 server ([`Generic`]):
//! `token_endpoint` (or `token_url`), or `issuer` to discover it from the server's metadata,
//! and `auth_method`.
//!
//! # A fleet's token store
//!
//! A `[store]` section ([`StoreConfig`], feature `redis`) shares the tokens of every replica
//! with the same configuration through Redis, so that the fleet makes one token request per
//! token lifetime: [`ProviderConfig::cache_builder`] gives the cache builder with the store and
//! the flow's store key. Its URL, encryption keys and key secret are references too.
//!
//! # Errors and secrets
//!
//! Reading `client_secret` never fails, whatever it holds: a malformed value (a number, an
//! array, a table with an unknown key, two keys) is kept as a problem that
//! [`ProviderConfig::build`] reports without the value. So no deserialization error, in any
//! format, comes from the secret field or carries what it holds; [`SecretRef`] deserialized on
//! its own fails with a message that never holds the input either.
//!
//! What this crate cannot control: a format's own error for *another* problem in the same
//! file. The `toml` crate's error `Display` quotes the offending source line (a TOML syntax
//! error on the secret's line, such as an unquoted `client_secret = demo-secret`, or a
//! misspelled key like `client_sercet = "..."`, shows that line with the secret). Do not print
//! or log the parse errors of files that hold inline secrets; better, keep secrets out of
//! configuration files (`{ env = "VAR" }`, `{ file = "path" }`).
//!
//! ```
//! use tower_bearer::config::ProviderConfig;
//!
//! let config: ProviderConfig = serde_json::from_str(r#"{
//!     "provider": "kontrolle",
//!     "environment": "acceptance",
//!     "authority": "https://login.microsoftonline.com/contoso.onmicrosoft.com",
//!     "client_id": "6731de76-14a6-49ae-97bc-6eba6914391e",
//!     "client_secret": { "env": "KONTROLLE_CLIENT_SECRET" },
//!     "scope": "api://kontrolle-plus/.default",
//!     "required_role": "ProviderApi.Access"
//! }"#).unwrap();
//! assert_eq!(config.environment.as_deref(), Some("acceptance"));
//! assert!(!format!("{config:?}").contains("secret\":"));
//! ```

use std::fmt;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::{self, Visitor};
use zeroize::Zeroizing;

use crate::error::TokenError;
use crate::oauth::{ClaimsCheck, ClientCredentials, Transport};
use crate::providers::{
    AuthMethod, Generic, KontrollePlus, Kpn, Provider, ScreeningEagle, SettingError,
};
use crate::{TokenCache, TokenCacheBuilder};

mod store;

pub use store::{DecryptionKeyConfig, StoreConfig};

/// Which flow a configuration is for: the name of [`Provider`] before it was the crate's one
/// provider enum.
#[deprecated(
    since = "0.2.0",
    note = "use `providers::Provider` (`Kontrolle` is `KontrollePlus`)"
)]
pub type ProviderKind = Provider;

/// Where the client secret is: never the secret itself, unless explicitly allowed.
///
/// Deserializes from a table with one of `env`, `file` or `value`, or from a bare string,
/// which is read as `value`. A deserialization error never holds the input (it may be the
/// secret).
///
/// ```
/// use tower_bearer::config::SecretRef;
///
/// let r: SecretRef = serde_json::from_str(r#"{ "env": "CLIENT_SECRET" }"#).unwrap();
/// assert!(matches!(r, SecretRef::Env(name) if name == "CLIENT_SECRET"));
/// let r: SecretRef = serde_json::from_str(r#""demo-secret""#).unwrap();
/// assert_eq!(format!("{r:?}"), "Value([redacted])");
/// let err = serde_json::from_str::<SecretRef>(r#"{ "token": "demo-secret" }"#).unwrap_err();
/// assert!(!err.to_string().contains("demo-secret"));
/// ```
#[derive(Clone)]
pub enum SecretRef {
    /// The name of an environment variable that holds the secret.
    Env(String),
    /// A file that holds the secret (trailing newlines are ignored).
    File(PathBuf),
    /// The secret itself: refused unless [`ProviderConfig::allow_inline_secret`] is set.
    Value(SecretString),
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => f.debug_tuple("Env").field(name).finish(),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Value(_) => f.write_str("Value([redacted])"),
        }
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match SecretInput::deserialize(d)? {
            SecretInput::Ref(r) => Ok(r),
            SecretInput::Invalid(problem) => Err(serde::de::Error::custom(format_args!(
                "client_secret: {problem}"
            ))),
        }
    }
}

/// What a secret field held: a reference, or what is wrong with it (never the value).
#[derive(Clone)]
enum SecretInput {
    Ref(SecretRef),
    Invalid(&'static str),
}

const SECRET_SHAPE: &str = "expected a string or a table with one of `env`, `file`, `value`";

impl<'de> Deserialize<'de> for SecretInput {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecretVisitor)
    }
}

/// Accepts any value and never puts any of it in an error: the errors serde makes itself
/// (`invalid type: string "..."`, `unknown variant ...`) quote the input.
struct SecretVisitor;

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = SecretInput;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SECRET_SHAPE)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(SecretInput::Ref(SecretRef::Value(SecretString::from(v))))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(SecretInput::Ref(SecretRef::Value(
            crate::token::secret_from(v),
        )))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found: Option<SecretRef> = None;
        let mut problem: Option<&'static str> = None;
        while let Some(key) = map.next_key::<SecretKey>()? {
            let value = map.next_value::<AnyValue>()?;
            let AnyValue::Str(value) = value else {
                problem.get_or_insert("`env`, `file` and `value` must be strings");
                continue;
            };
            let r = match key {
                SecretKey::Env => SecretRef::Env(value.expose_secret().to_owned()),
                SecretKey::File => SecretRef::File(PathBuf::from(value.expose_secret())),
                SecretKey::Value => SecretRef::Value(value),
                SecretKey::Unknown => {
                    problem.get_or_insert(
                        "has a key that is not `env`, `file` or `value` (its value is not shown)",
                    );
                    continue;
                }
            };
            if found.replace(r).is_some() {
                problem.get_or_insert("has more than one of `env`, `file`, `value`");
            }
        }
        Ok(match (problem, found) {
            (Some(problem), _) => SecretInput::Invalid(problem),
            (None, Some(r)) => SecretInput::Ref(r),
            (None, None) => SecretInput::Invalid("is an empty table: set one of `env`, `file`"),
        })
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(SecretInput::Invalid(SECRET_SHAPE))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(SecretInput::Invalid(SECRET_SHAPE))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(SecretInput::Invalid(SECRET_SHAPE))
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Self::Value, E> {
        Ok(SecretInput::Invalid(SECRET_SHAPE))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(SecretInput::Invalid(SECRET_SHAPE))
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Self::Value, E> {
        Ok(SecretInput::Invalid(SECRET_SHAPE))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(SecretInput::Invalid(SECRET_SHAPE))
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
        Ok(SecretInput::Invalid(SECRET_SHAPE))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(SecretInput::Invalid(SECRET_SHAPE))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(SecretInput::Invalid(SECRET_SHAPE))
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_newtype_struct<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        let (_, variant) = data.variant::<de::IgnoredAny>()?;
        de::VariantAccess::newtype_variant::<de::IgnoredAny>(variant)?;
        Ok(SecretInput::Invalid(SECRET_SHAPE))
    }
}

/// A key of a secret table; any other key is `Unknown`, never an error naming it.
enum SecretKey {
    Env,
    File,
    Value,
    Unknown,
}

impl<'de> Deserialize<'de> for SecretKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = SecretKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`env`, `file` or `value`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SecretKey, E> {
                Ok(match v {
                    "env" => SecretKey::Env,
                    "file" => SecretKey::File,
                    "value" => SecretKey::Value,
                    _ => SecretKey::Unknown,
                })
            }
            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<SecretKey, E> {
                Ok(SecretKey::Unknown)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<SecretKey, E> {
                Ok(SecretKey::Unknown)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<SecretKey, E> {
                Ok(SecretKey::Unknown)
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// Any value: a string (held as a secret: it may be one), or something else, consumed.
enum AnyValue {
    Str(SecretString),
    Other,
}

impl<'de> Deserialize<'de> for AnyValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_any(SecretVisitor)? {
            SecretInput::Ref(SecretRef::Value(v)) => Ok(AnyValue::Str(v)),
            _ => Ok(AnyValue::Other),
        }
    }
}

/// One provider's settings, as in a runbook.
///
/// ```
/// use tower_bearer::config::ProviderConfig;
/// use tower_bearer::providers::Provider;
///
/// let config: ProviderConfig = toml::from_str(r#"
///     provider = "kpn"
///     environment = "sandbox"
///     client_id = "client-7"
///     client_secret = { env = "KPN_CLIENT_SECRET" }
///     scope = "orders.read orders.write"
/// "#).unwrap();
/// assert_eq!(config.provider, Provider::Kpn);
/// assert_eq!(config.scope, ["orders.read", "orders.write"]);
/// ```
#[derive(Clone, Deserialize)]
#[serde(from = "RawProviderConfig")]
#[non_exhaustive]
pub struct ProviderConfig {
    /// The flow.
    pub provider: Provider,
    /// A label for the environment (`sandbox`, `acceptance`, `production`); shown in traces.
    #[serde(default)]
    pub environment: Option<String>,
    /// Kontrolle+: the authority (`https://login.microsoftonline.com/<tenant>`).
    #[serde(default)]
    pub authority: Option<String>,
    /// The token endpoint (Screening Eagle: the base URL works too, see `base_url`). Also
    /// read as `token_url`, the builders' word.
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// Generic: the issuer whose metadata names the token endpoint (RFC 8414 discovery),
    /// instead of `token_endpoint`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Generic: how the client authenticates (`client_secret_basic`, `client_secret_post`).
    /// Default: `client_secret_basic` (with an issuer: `client_secret_post` if its token
    /// endpoint does not take Basic).
    #[serde(default)]
    pub auth_method: Option<AuthMethod>,
    /// Screening Eagle ID: the base URL.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The client id.
    pub client_id: String,
    /// Where the client secret is.
    #[serde(default)]
    pub client_secret: Option<SecretRef>,
    /// Scopes: one string (space-separated) or a list.
    #[serde(default, deserialize_with = "one_or_many")]
    pub scope: Vec<String>,
    /// The expected `aud` of the token (Kontrolle+: defaults to the app id URI).
    #[serde(default)]
    pub audience: Option<String>,
    /// A role the token must carry (Kontrolle+: defaults to `ProviderApi.Access`).
    #[serde(default)]
    pub required_role: Option<String>,
    /// Accepts an inline `client_secret = { value = "..." }` (or a bare string). Off by
    /// default: configuration files end up in repositories and logs.
    #[serde(default)]
    pub allow_inline_secret: bool,
    /// Accepts plain `http://` URLs to hosts that are not loopback (the token endpoint, the
    /// authority, the base URL, the issuer). Off by default: the client secret would travel in
    /// clear text; only for a network you trust.
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// The token store a fleet of replicas shares (`[store]`, feature `redis`), used by
    /// [`cache_builder`](Self::cache_builder).
    #[serde(default)]
    pub store: Option<StoreConfig>,
    /// What was wrong with `client_secret`, reported by `build` (never its value).
    #[serde(skip)]
    client_secret_problem: Option<&'static str>,
    /// Where the configuration came from: errors name fields and fixes in its syntax.
    #[serde(skip)]
    syntax: Syntax,
}

/// Where a configuration came from, so that an error says what to change in the words of that
/// source: a file's keys (`scope = "..."`) or the environment's variables (`PARTNER_SCOPE=...`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum Syntax {
    /// A file (TOML, JSON, YAML, ...), read through serde.
    #[default]
    File,
    /// `<PREFIX>_*` environment variables.
    Env(String),
}

impl Syntax {
    /// How the source names `field` (`store.url` in a file; `<PREFIX>_STORE_URL`).
    fn name(&self, field: &str) -> String {
        match self {
            Self::File => field.to_owned(),
            Self::Env(prefix) => format!("{prefix}_{}", field.replace('.', "_").to_uppercase()),
        }
    }

    /// How the source sets `field` to `value`: `` `key = "value"` `` (a bare `true` or
    /// `false` unquoted), or `` `<PREFIX>_FIELD=value` ``.
    fn assign(&self, field: &str, value: &str) -> String {
        match self {
            Self::File => {
                let key = field.rsplit('.').next().unwrap_or(field);
                if value == "true" || value == "false" {
                    format!("`{key} = {value}`")
                } else {
                    format!("`{key} = \"{value}\"`")
                }
            }
            Self::Env(_) => format!("`{}={value}`", self.name(field)),
        }
    }

    /// How the source refers to the secret of `field` (`key` as a file writes it).
    fn secret_ref(&self, field: &str, key: &str) -> String {
        match self {
            Self::File => format!("`{key} = {{ env = \"VAR\" }}` or `{{ file = \"path\" }}`"),
            Self::Env(_) => {
                let name = self.name(field);
                format!(
                    "`{name}_ENV=VAR` (the variable that holds the secret) or `{name}_FILE=path`"
                )
            }
        }
    }
}

impl fmt::Debug for ProviderConfig {
    /// URLs with user information (`user:password@`) show `***@` instead; the secret shows
    /// where it is, never its value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::oauth::request::redact_userinfo;
        let url = |u: &Option<String>| u.as_deref().map(|u| redact_userinfo(u).into_owned());
        f.debug_struct("ProviderConfig")
            .field("provider", &self.provider)
            .field("environment", &self.environment)
            .field("authority", &url(&self.authority))
            .field("token_endpoint", &url(&self.token_endpoint))
            .field("issuer", &url(&self.issuer))
            .field("auth_method", &self.auth_method)
            .field("base_url", &url(&self.base_url))
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("scope", &self.scope)
            .field("audience", &self.audience)
            .field("required_role", &self.required_role)
            .field("allow_inline_secret", &self.allow_inline_secret)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("store", &self.store)
            .field("client_secret_problem", &self.client_secret_problem)
            .finish()
    }
}

/// [`ProviderConfig`] as read: a malformed `client_secret` is kept as a problem rather than
/// failing the read with an error that could quote it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProviderConfig {
    provider: Provider,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    authority: Option<String>,
    #[serde(default, alias = "token_url")]
    token_endpoint: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    auth_method: Option<AuthMethod>,
    #[serde(default)]
    base_url: Option<String>,
    client_id: String,
    #[serde(default)]
    client_secret: Option<SecretInput>,
    #[serde(default, deserialize_with = "one_or_many")]
    scope: Vec<String>,
    #[serde(default)]
    audience: Option<String>,
    #[serde(default)]
    required_role: Option<String>,
    #[serde(default)]
    allow_inline_secret: bool,
    #[serde(default)]
    allow_insecure_http: bool,
    #[serde(default)]
    store: Option<StoreConfig>,
}

impl From<RawProviderConfig> for ProviderConfig {
    fn from(raw: RawProviderConfig) -> Self {
        let (client_secret, client_secret_problem) = match raw.client_secret {
            None => (None, None),
            Some(SecretInput::Ref(r)) => (Some(r), None),
            Some(SecretInput::Invalid(problem)) => (None, Some(problem)),
        };
        Self {
            provider: raw.provider,
            environment: raw.environment,
            authority: raw.authority,
            token_endpoint: raw.token_endpoint,
            issuer: raw.issuer,
            auth_method: raw.auth_method,
            base_url: raw.base_url,
            client_id: raw.client_id,
            client_secret,
            scope: raw.scope,
            audience: raw.audience,
            required_role: raw.required_role,
            allow_inline_secret: raw.allow_inline_secret,
            allow_insecure_http: raw.allow_insecure_http,
            store: raw.store,
            client_secret_problem,
            syntax: Syntax::File,
        }
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s.split_whitespace().map(str::to_owned).collect(),
        OneOrMany::Many(v) => v,
    })
}

fn invalid(
    field: &str,
    message: impl fmt::Display,
    fix: impl Into<std::borrow::Cow<'static, str>>,
) -> TokenError {
    TokenError::configuration(format!("configuration `{field}`: {message}"), fix)
}

impl ProviderConfig {
    /// Reads a configuration from environment variables named `<PREFIX>_<FIELD>`:
    /// `PROVIDER`, `ENVIRONMENT`, `AUTHORITY`, `TOKEN_ENDPOINT`, `ISSUER`, `BASE_URL`,
    /// `CLIENT_ID`, `CLIENT_SECRET_ENV` (the name of the variable holding the secret) or
    /// `CLIENT_SECRET_FILE`, `AUTH_METHOD`, `SCOPE` (space-separated), `AUDIENCE`,
    /// `REQUIRED_ROLE`, `ALLOW_INSECURE_HTTP` (`true`/`false`).
    ///
    /// Any other `<PREFIX>_*` variable is refused, naming the closest known one
    /// (`PARTNER_SCOPES`: did you mean `PARTNER_SCOPE`?), unless a `*_ENV` variable names it
    /// as the one that holds a secret. Errors name the variables to set, in their syntax.
    ///
    /// The fleet's token store ([`StoreConfig`]), if any `STORE_*` variable is set:
    /// `STORE_URL` (a URL without a password) or `STORE_URL_ENV` / `STORE_URL_FILE`,
    /// `STORE_CLUSTER` (`true`/`false`), `STORE_ENCRYPTION_KEY_ENV` / `_FILE`, `STORE_KEY_ID`,
    /// `STORE_DECRYPTION_KEYS_ENV` / `_FILE` (comma-separated `id=VAR` / `id=path`),
    /// `STORE_KEY_SECRET_ENV` / `_FILE`, `STORE_PREFIX`, `STORE_CA_FILE`, `STORE_TIMEOUT_MS`,
    /// `STORE_BUDGET_MS`, `STORE_RETRY_MS`. Like the client secret, keys and the key secret are
    /// only named here: `STORE_ENCRYPTION_KEY`, `STORE_KEY_SECRET` and a `STORE_URL` with a
    /// password are refused.
    ///
    /// ```no_run
    /// use tower_bearer::config::ProviderConfig;
    ///
    /// // KPN_PROVIDER=kpn KPN_CLIENT_ID=... KPN_CLIENT_SECRET_ENV=KPN_SECRET KPN_SECRET=...
    /// let config = ProviderConfig::from_env("KPN").unwrap();
    /// # let _ = config;
    /// ```
    pub fn from_env(prefix: &str) -> Result<Self, TokenError> {
        Self::from_vars(
            prefix,
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// Like [`from_env`](Self::from_env), from a list of variables (all of them, or those of
    /// the prefix): an unknown `<PREFIX>_*` variable is refused with the closest known name.
    ///
    /// ```
    /// use tower_bearer::config::ProviderConfig;
    ///
    /// let vars = [
    ///     ("PARTNER_PROVIDER", "generic"),
    ///     ("PARTNER_ISSUER", "https://login.partner.example"),
    ///     ("PARTNER_CLIENT_ID", "client-7"),
    ///     ("PARTNER_CLIENT_SECRET_ENV", "PARTNER_SECRET"),
    ///     ("PARTNER_SECRET", "..."), // named by PARTNER_CLIENT_SECRET_ENV: not unknown
    ///     ("PARTNER_SCOPES", "orders.read"),
    /// ];
    /// let err = ProviderConfig::from_vars("PARTNER", vars).unwrap_err();
    /// assert_eq!(err.message(), "configuration `PARTNER_SCOPES`: is not a variable tower-bearer reads");
    /// assert_eq!(err.hint(), Some("did you mean `PARTNER_SCOPE`? Rename it, or remove it"));
    /// ```
    pub fn from_vars<I, K, V>(prefix: &str, vars: I) -> Result<Self, TokenError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let start = format!("{prefix}_");
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .filter(|(k, _)| k.starts_with(&start))
            .collect();
        let config = Self::from_lookup(prefix, |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })?;
        // The variables a `*_ENV` variable names hold secrets: they are not unknown.
        let named: Vec<&str> = vars
            .iter()
            .filter(|(k, _)| k.ends_with("_ENV"))
            .flat_map(|(_, v)| v.split(','))
            .map(|v| v.rsplit('=').next().unwrap_or(v).trim())
            .collect();
        let known = known_variables();
        for (name, _) in &vars {
            let suffix = &name[start.len()..];
            if known.iter().any(|k| k == suffix) || named.contains(&name.as_str()) {
                continue;
            }
            let hint = match closest(suffix, &known) {
                Some(close) => format!("did you mean `{prefix}_{close}`? Rename it, or remove it"),
                None => format!(
                    "remove it, or rename it to one of the variables `ProviderConfig::from_env` \
                     reads ({prefix}_PROVIDER, {prefix}_CLIENT_ID, ...)"
                ),
            };
            return Err(invalid(name, "is not a variable tower-bearer reads", hint));
        }
        Ok(config)
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup` (a secret
    /// manager's environment, a test's map).
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use tower_bearer::config::ProviderConfig;
    ///
    /// let vars = HashMap::from([
    ///     ("KPN_PROVIDER", "kpn"),
    ///     ("KPN_CLIENT_ID", "APP_CLIENT_ID"),
    ///     ("KPN_CLIENT_SECRET_ENV", "KPN_SECRET"),
    /// ]);
    /// let config = ProviderConfig::from_lookup("KPN", |name| vars.get(name).map(|v| v.to_string())).unwrap();
    /// assert_eq!(config.client_id, "APP_CLIENT_ID");
    /// assert!(config.store.is_none());
    ///
    /// // A fleet's store: the keys are named, never given.
    /// let vars = HashMap::from([
    ///     ("KPN_PROVIDER", "kpn"),
    ///     ("KPN_CLIENT_ID", "APP_CLIENT_ID"),
    ///     ("KPN_CLIENT_SECRET_ENV", "KPN_SECRET"),
    ///     ("KPN_STORE_URL_ENV", "REDIS_URL"),
    ///     ("KPN_STORE_ENCRYPTION_KEY_FILE", "/run/secrets/token-store-key"),
    ///     ("KPN_STORE_KEY_ID", "2026-12"),
    ///     ("KPN_STORE_KEY_SECRET_ENV", "TOKEN_STORE_KEY_SECRET"),
    /// ]);
    /// let config = ProviderConfig::from_lookup("KPN", |name| vars.get(name).map(|v| v.to_string())).unwrap();
    /// assert_eq!(config.store.unwrap().key_id.as_deref(), Some("2026-12"));
    /// ```
    pub fn from_lookup(
        prefix: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, TokenError> {
        let var = |name: &str| -> Option<String> {
            lookup(&format!("{prefix}_{name}")).filter(|v| !v.trim().is_empty())
        };
        let required = |name: &str| {
            var(name).ok_or_else(|| {
                invalid(
                    &format!("{prefix}_{name}"),
                    "is not set",
                    "set the environment variable",
                )
            })
        };
        let syntax = Syntax::Env(prefix.to_owned());
        let provider: Provider = required("PROVIDER")?.parse().map_err(|e: TokenError| {
            invalid(
                &format!("{prefix}_PROVIDER"),
                e.message(),
                "use kontrolle, screening-eagle, kpn or generic",
            )
        })?;
        if var("CLIENT_SECRET").is_some() {
            return Err(invalid(
                &format!("{prefix}_CLIENT_SECRET"),
                "holds a secret where a reference is expected",
                format!(
                    "name the variable that holds the secret: {}",
                    syntax.secret_ref("client_secret", "client_secret")
                ),
            ));
        }
        let client_secret = match (var("CLIENT_SECRET_ENV"), var("CLIENT_SECRET_FILE")) {
            (Some(name), None) => Some(SecretRef::Env(name)),
            (None, Some(path)) => Some(SecretRef::File(path.into())),
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(invalid(
                    &format!("{prefix}_CLIENT_SECRET_ENV"),
                    "and _FILE are both set",
                    format!(
                        "set only one of {prefix}_CLIENT_SECRET_ENV and {prefix}_CLIENT_SECRET_FILE"
                    ),
                ));
            }
        };
        let auth_method = match var("AUTH_METHOD") {
            None => None,
            Some(name) => Some(name.trim().parse::<AuthMethod>().map_err(|e| {
                invalid(
                    &syntax.name("auth_method"),
                    e.message(),
                    format!(
                        "write {} (or client_secret_post)",
                        syntax.assign("auth_method", "client_secret_basic")
                    ),
                )
            })?),
        };
        let allow_insecure_http =
            match var("ALLOW_INSECURE_HTTP").map(|v| v.trim().to_ascii_lowercase()) {
                None => false,
                Some(v) if v == "true" || v == "1" => true,
                Some(v) if v == "false" || v == "0" => false,
                Some(v) => {
                    return Err(invalid(
                        &syntax.name("allow_insecure_http"),
                        format!("`{}` is not true or false", crate::error::sanitize(&v)),
                        format!("write {}", syntax.assign("allow_insecure_http", "true")),
                    ));
                }
            };
        Ok(Self {
            provider,
            environment: var("ENVIRONMENT"),
            authority: var("AUTHORITY"),
            token_endpoint: var("TOKEN_ENDPOINT"),
            issuer: var("ISSUER"),
            auth_method,
            base_url: var("BASE_URL"),
            client_id: required("CLIENT_ID")?,
            client_secret,
            scope: var("SCOPE")
                .map(|s| s.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
            audience: var("AUDIENCE"),
            required_role: var("REQUIRED_ROLE"),
            allow_inline_secret: false,
            allow_insecure_http,
            store: StoreConfig::from_vars(prefix, var)?,
            client_secret_problem: None,
            syntax,
        })
    }

    /// Reads the secret the configuration refers to.
    fn secret(&self) -> Result<SecretString, TokenError> {
        read_secret(
            &self.syntax,
            "client_secret",
            "client_secret",
            self.client_secret.as_ref(),
            self.client_secret_problem,
            self.allow_inline_secret,
        )
    }

    /// The token source this configuration describes: the provider's builder (or, for
    /// `generic`, the shared core of the builders) given these settings. A builder's error
    /// names the configuration field to fix. The `[store]` section is not read here: hand
    /// the source to [`cache_builder`](Self::cache_builder).
    ///
    /// ```
    /// use tower_bearer::config::ProviderConfig;
    /// use tower_bearer::oauth::ServiceTransport;
    /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    ///
    /// let toml = r#"provider = "kpn"
    /// client_id = "client-7"
    /// client_secret = { value = "s3cret" }"#;
    /// let mut config: ProviderConfig = toml::from_str(toml).unwrap();
    /// let err = config.build(ServiceTransport::new(http_client)).unwrap_err();
    /// assert!(err.to_string().contains("holds the secret itself"), "{err}");
    /// config.allow_inline_secret = true; // for a test, never in production
    /// let source = config.build(ServiceTransport::new(http_client)).unwrap();
    /// assert_eq!(source.auth().client_id(), "client-7");
    /// ```
    pub fn build<T: Transport>(&self, transport: T) -> Result<ClientCredentials<T>, TokenError> {
        let syntax = &self.syntax;
        if self.provider != Provider::Generic {
            for (field, set) in [
                ("issuer", self.issuer.is_some()),
                ("auth_method", self.auth_method.is_some()),
            ] {
                if set {
                    return Err(invalid(
                        &syntax.name(field),
                        format!("is for provider generic, not {}", self.provider.as_str()),
                        format!(
                            "remove it ({} uses its own), or use {}",
                            self.provider,
                            syntax.assign("provider", "generic")
                        ),
                    ));
                }
            }
        }
        let secret = self.secret()?;
        let insecure = self.allow_insecure_http;
        let source = match self.provider {
            Provider::KontrollePlus => {
                let mut builder = KontrollePlus::new()
                    .client_id(&self.client_id)
                    .secret(secret)
                    .allow_insecure_http(insecure);
                builder = match &self.token_endpoint {
                    Some(url) => builder.token_url(url),
                    None => builder,
                };
                if let Some(authority) = &self.authority {
                    builder = builder.authority(authority);
                }
                for scope in &self.scope {
                    builder = builder.scope(scope);
                }
                if let Some(audience) = &self.audience {
                    builder = builder.expected_audience(audience);
                }
                if let Some(role) = &self.required_role {
                    builder = builder.required_role(role);
                }
                builder.build(transport)
            }
            Provider::ScreeningEagle => {
                let mut builder = ScreeningEagle::new()
                    .client_id(&self.client_id)
                    .secret(secret)
                    .allow_insecure_http(insecure)
                    .scopes(&self.scope);
                if let Some(url) = &self.token_endpoint {
                    builder = builder.token_url(url);
                }
                if let Some(base) = &self.base_url {
                    builder = builder.base_url(base);
                }
                builder.build(transport)
            }
            Provider::Kpn => {
                let mut builder = Kpn::new()
                    .client_id(&self.client_id)
                    .secret(secret)
                    .allow_insecure_http(insecure);
                if let Some(url) = &self.token_endpoint {
                    builder = builder.token_url(url);
                }
                builder.build(transport)
            }
            Provider::Generic => self.generic(secret, transport),
        }
        .map_err(|e| config_error(e, syntax))?;
        Ok(match &self.environment {
            Some(env) => source.label(format!("{}/{env}", self.provider.as_str())),
            None => source,
        })
    }

    /// A [`TokenCache`] builder for `source` (what [`build`](Self::build)
    /// made of this configuration) with the fleet's token store of the `[store]` section, if
    /// there is one: a `RedisStore` ([`StoreConfig`]), `source`'s store key under
    /// [`StoreConfig::key_secret`] and [`StoreConfig::prefix`]
    /// (`ClientCredentials::store_key`), and the store's timeouts. Without a `[store]`
    /// section it is `TokenCache::builder(source)`. The rest of the cache's settings are yours
    /// to chain.
    ///
    /// Reads the store's secrets (URL, keys) where the section says; nothing connects yet.
    /// Fails with a configuration error that names the `store.*` field to fix and holds no
    /// secret, and, if the crate was built without feature `redis`, for any `[store]` section:
    /// the fleet would otherwise silently make one token request per replica. ([`build`](Self::build)
    /// ignores the section, so a tool built without `redis` can still read the same file.)
    ///
    /// ```
    /// use tower_bearer::config::ProviderConfig;
    /// use tower_bearer::oauth::ServiceTransport;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("tower-bearer-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let file = |name: &str, text: &str| -> std::io::Result<String> {
    /// #     let path = dir.join(name);
    /// #     std::fs::write(&path, text)?;
    /// #     Ok(path.display().to_string())
    /// # };
    /// # let client_secret = file("client-secret", "demo-client-secret\n")?;
    /// # let encryption_key = file("store-key", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n")?;
    /// # let key_secret = file("key-secret", "c2VjcmV0LWZvci1zdG9yZS1rZXktbmFtZXMtMzJieXQ=\n")?;
    /// # let http_client = tower::service_fn(|_: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    /// let config: ProviderConfig = toml::from_str(&format!(r#"
    ///     provider = "generic"
    ///     token_endpoint = "https://login.partner.example/oauth2/token"
    ///     client_id = "client-7"
    ///     client_secret = {{ file = "{client_secret}" }}
    ///     scope = "api.read"
    ///
    ///     [store]
    ///     url = "redis://redis.internal:6379"
    ///     encryption_key = {{ file = "{encryption_key}" }}
    ///     key_id = "2026-12"
    ///     key_secret = {{ file = "{key_secret}" }}
    ///     prefix = "billing"
    /// "#))?;
    /// let source = config.build(ServiceTransport::new(http_client))?;
    /// # if cfg!(not(feature = "redis")) { return Ok(()); }
    /// let cache = config
    ///     .cache_builder(source)?
    ///     .refresh_margin(std::time::Duration::from_secs(120))
    ///     .build();
    /// # let _ = cache;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    pub fn cache_builder<T: Transport + 'static>(
        &self,
        source: ClientCredentials<T>,
    ) -> Result<TokenCacheBuilder, TokenError> {
        let Some(store) = &self.store else {
            return Ok(TokenCache::builder(source));
        };
        #[cfg(feature = "redis")]
        {
            let opened = store.open(
                self.provider,
                self.allow_inline_secret,
                &source,
                &self.syntax,
            )?;
            Ok(TokenCache::builder(source)
                .store(opened.store, opened.key)
                .store_timeouts(opened.timeout, opened.budget, opened.retry))
        }
        #[cfg(not(feature = "redis"))]
        {
            let _ = store;
            Err(TokenError::configuration(
                "configuration `store`: a token store is configured, but tower-bearer was built \
                 without feature `redis`",
                "enable it (`tower-bearer = { version = \"...\", features = [\"redis\"] }`), or \
                 remove the store section",
            ))
        }
    }

    /// Any RFC 6749 server ([`Generic`]): the token endpoint or the issuer, the method, the
    /// scopes asked for, and the claims named checked.
    fn generic<T: Transport>(
        &self,
        secret: SecretString,
        transport: T,
    ) -> Result<ClientCredentials<T>, TokenError> {
        let mut builder = Generic::new()
            .client_id(&self.client_id)
            .secret(secret)
            .allow_insecure_http(self.allow_insecure_http)
            .scopes(&self.scope);
        if let Some(url) = &self.token_endpoint {
            builder = builder.token_url(url);
        }
        if let Some(issuer) = &self.issuer {
            builder = builder.issuer(issuer);
        }
        if let Some(method) = self.auth_method {
            builder = builder.auth_method(method);
        }
        if self.audience.is_some() || self.required_role.is_some() {
            let mut check = ClaimsCheck::new();
            if let Some(audience) = &self.audience {
                check = check.audience(audience);
            }
            if let Some(role) = &self.required_role {
                check = check.require_role(role);
            }
            builder = builder.check_claims(check);
        }
        Ok(builder.build(transport)?.label("oauth2"))
    }
}

/// Reads the secret `reference` names for `field` (`key` as written in the file, for the
/// hint): the environment variable, the file (trailing newlines ignored), or the inline value
/// if `inline` allows it. `problem` is what was wrong with the field as read. No error holds
/// the secret.
fn read_secret(
    syntax: &Syntax,
    field: &str,
    key: &str,
    reference: Option<&SecretRef>,
    problem: Option<&str>,
    inline: bool,
) -> Result<SecretString, TokenError> {
    let reference_fix = syntax.secret_ref(field, key);
    let fix = format!("set {reference_fix}");
    let named = syntax.name(field);
    let field = named.as_str();
    if let Some(problem) = problem {
        return Err(invalid(field, problem, fix));
    }
    match reference {
        None => Err(invalid(field, "is not set", fix)),
        Some(SecretRef::Env(name)) => std::env::var(name)
            .ok()
            .filter(|s| !s.is_empty())
            .map(crate::token::secret_from)
            .ok_or_else(|| {
                invalid(
                    field,
                    format!("the environment variable `{name}` is not set"),
                    "set it (from your secret store) before starting",
                )
            }),
        Some(SecretRef::File(path)) => std::fs::read_to_string(path)
            .map(|s| {
                let s = Zeroizing::new(s);
                SecretString::from(s.trim_end_matches(['\r', '\n']))
            })
            .map_err(|e| {
                invalid(
                    field,
                    format!("cannot read `{}`: {e}", path.display()),
                    "check the path and its permissions",
                )
            }),
        Some(SecretRef::Value(value)) if inline => Ok(value.clone()),
        Some(SecretRef::Value(_)) => Err(invalid(
            field,
            "holds the secret itself",
            format!(
                "refer to it with {reference_fix} (or set {} if you must)",
                syntax.assign("allow_inline_secret", "true")
            ),
        )),
    }
}

/// A builder's error, said in the configuration's words: the field to fix (a file's key, or
/// the environment variable), and the fix in that syntax.
fn config_error(error: TokenError, syntax: &Syntax) -> TokenError {
    let Some(setting) =
        std::error::Error::source(&error).and_then(|source| source.downcast_ref::<SettingError>())
    else {
        return error;
    };
    let field = match setting.setting() {
        "token_url" => "token_endpoint",
        "app_id_uri" => "scope",
        other => other,
    };
    let fix = error
        .hint()
        .unwrap_or("see the provider's settings")
        .replace(
            "call `.allow_insecure_http(true)`",
            &format!("set {}", syntax.assign("allow_insecure_http", "true")),
        );
    let fix = match field {
        // The configuration has no private key: only the secret's references.
        "client_secret" => format!(
            "set the client secret (from a secret store): {}",
            syntax.secret_ref(field, field)
        ),
        _ => format!("{fix}: {}", syntax.assign(field, "...")),
    };
    TokenError::configuration(
        format!(
            "configuration `{}` ({}): {}",
            syntax.name(field),
            setting.provider(),
            setting.problem()
        ),
        fix,
    )
    .with_source(setting.clone())
}

/// Every `<PREFIX>_*` variable [`ProviderConfig::from_lookup`] reads, after the prefix.
fn known_variables() -> Vec<String> {
    const PROVIDER: [&str; 15] = [
        "PROVIDER",
        "ENVIRONMENT",
        "AUTHORITY",
        "TOKEN_ENDPOINT",
        "ISSUER",
        "BASE_URL",
        "CLIENT_ID",
        "CLIENT_SECRET",
        "CLIENT_SECRET_ENV",
        "CLIENT_SECRET_FILE",
        "AUTH_METHOD",
        "SCOPE",
        "AUDIENCE",
        "REQUIRED_ROLE",
        "ALLOW_INSECURE_HTTP",
    ];
    PROVIDER
        .iter()
        .map(|v| (*v).to_owned())
        .chain(store::VARIABLES.iter().map(|v| format!("STORE_{v}")))
        .collect()
}

/// The known name meant by `name`: the builders' word for a field (`TOKEN_URL` for
/// `TOKEN_ENDPOINT`), or the closest by edit distance if close enough to be a slip (at most a
/// quarter of the name, and at least 1, edits away).
fn closest<'a>(name: &str, known: &'a [String]) -> Option<&'a str> {
    const SETTER_WORDS: [(&str, &str); 2] = [
        ("TOKEN_URL", "TOKEN_ENDPOINT"),
        ("CLIENT_SECRET_VAR", "CLIENT_SECRET_ENV"),
    ];
    if let Some((_, field)) = SETTER_WORDS.iter().find(|(word, _)| *word == name) {
        return known.iter().map(String::as_str).find(|k| k == field);
    }
    known
        .iter()
        .map(|k| (edit_distance(name, k), k.as_str()))
        .filter(|(d, _)| *d <= (name.len() / 4).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance between two ASCII-ish names (by `char`).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names unknown variables are checked against are exactly those `from_lookup` reads.
    #[test]
    fn the_known_variables_are_those_from_lookup_reads() {
        let asked = std::cell::RefCell::new(std::collections::BTreeSet::new());
        ProviderConfig::from_lookup("P", |name| {
            asked.borrow_mut().insert(name["P_".len()..].to_owned());
            match name {
                "P_PROVIDER" => Some("kpn".to_owned()),
                "P_CLIENT_ID" => Some("id".to_owned()),
                _ => None,
            }
        })
        .unwrap();
        let known: std::collections::BTreeSet<String> = known_variables().into_iter().collect();
        assert_eq!(asked.into_inner(), known);
    }

    #[test]
    fn near_names_are_suggested_and_far_ones_are_not() {
        assert_eq!(edit_distance("SCOPES", "SCOPE"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
        let known = known_variables();
        for (typed, meant) in [
            ("SCOPES", Some("SCOPE")),
            ("CLIENTID", Some("CLIENT_ID")),
            ("CLIENT_SECRET_FIEL", Some("CLIENT_SECRET_FILE")),
            ("STORE_URLL", Some("STORE_URL")),
            ("TOKEN_URL", Some("TOKEN_ENDPOINT")),
            ("TOKN_ENDPIONT", Some("TOKEN_ENDPOINT")),
            ("ISSUERS_URL", None),
            ("COLOUR", None),
        ] {
            assert_eq!(closest(typed, &known), meant, "{typed}");
        }
    }

    /// Code written against `ProviderKind` still compiles and means the same provider, in
    /// expressions and in patterns.
    #[test]
    #[allow(deprecated)]
    fn the_deprecated_provider_kind_still_names_the_providers() {
        let kind: ProviderKind = ProviderKind::Kontrolle;
        assert_eq!(kind, Provider::KontrollePlus);
        let name = match kind {
            ProviderKind::Kontrolle => "kontrolle",
            ProviderKind::ScreeningEagle | ProviderKind::Kpn | ProviderKind::Generic => "other",
        };
        assert_eq!(name, "kontrolle");
        let config: ProviderConfig =
            serde_json::from_str(r#"{"provider":"kontrolle","client_id":"id"}"#).unwrap();
        assert_eq!(config.provider, ProviderKind::Kontrolle);
    }
}
