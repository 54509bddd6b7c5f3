//! The `[store]` section: the token store a fleet of replicas shares (feature `redis`), read
//! from serde or from `<PREFIX>_STORE_*` environment variables, and made into a `RedisStore`
//! and the flow's store key for [`ProviderConfig::cache_builder`](super::ProviderConfig::cache_builder).

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
#[cfg(feature = "redis")]
use zeroize::Zeroizing;

use super::{SecretInput, SecretRef, invalid};
use crate::error::TokenError;

/// The `[store]` section of a [`ProviderConfig`](super::ProviderConfig): a Redis or Valkey
/// token store shared by the replicas of a fleet, so that the fleet makes one token request per
/// token lifetime (see [`crate::store`]). Used by
/// [`ProviderConfig::cache_builder`](super::ProviderConfig::cache_builder); needs feature
/// `redis`.
///
/// Secrets are references, as for `client_secret`: `url` (it may hold a password),
/// `encryption_key`, `key_secret` and the `decryption_keys` are `{ env = "VAR" }` or
/// `{ file = "path" }`. An inline value is refused unless `allow_inline_secret` is set, except
/// a `url` without a password (no `@`, no `pass=`), which is not a secret.
///
/// ```toml
/// [store]
/// url = { env = "REDIS_URL" }             # rediss://user:password@redis.internal:6380
/// encryption_key = { file = "/run/secrets/token-store-key" }  # openssl rand -base64 32
/// key_id = "2026-12"
/// decryption_keys = [{ id = "2026-06", key = { file = "/run/secrets/token-store-key-old" } }]
/// key_secret = { env = "TOKEN_STORE_KEY_SECRET" }  # openssl rand -base64 32
/// prefix = "billing"                      # default: tower-bearer:<provider>
/// # cluster = true                        # several URLs (comma-separated) mean a cluster
/// # ca_file = "/etc/ssl/redis-ca.pem"     # roots for rediss://, instead of the system's
/// # timeout_ms = 250                      # one store call
/// # budget_ms = 1000                      # all the store calls of one fetch
/// # retry_ms = 5000                       # how long a failed store is skipped
/// ```
///
/// - `encryption_key`, `decryption_keys`: AES-256 keys, 32 bytes each, written as 64 hex
///   digits (`openssl rand -hex 32`) or base64 (`openssl rand -base64 32`); one key writes
///   (its id is `key_id`), the older ones only decrypt, for a rotation.
/// - `key_secret`: the secret under which the store key's name is hashed from the flow
///   (token URL, client, scopes, credential...: [`ClientCredentials::store_key`]), at least
///   32 bytes, hex or base64 like the keys. It is a secret of its own, not derived from the
///   encryption key: rotating the encryption key must not rename the fleet's keys (replicas
///   on the old and the new key would stop sharing, and the rotation's read-only old key
///   would find nothing to read).
///
/// [`ClientCredentials::store_key`]: crate::oauth::ClientCredentials
#[derive(Clone, Default, Deserialize)]
#[serde(from = "RawStoreConfig")]
#[non_exhaustive]
pub struct StoreConfig {
    /// Where the Redis server is: `redis://[user[:password]@]host[:port][/db]`, or `rediss://`
    /// for TLS; for a cluster, several URLs separated by commas (or one node of it, with
    /// `cluster = true`).
    pub url: Option<SecretRef>,
    /// Redis Cluster: `true`, `false`, or unset (a cluster if `url` has several URLs).
    pub cluster: Option<bool>,
    /// The AES-256 key that encrypts the tokens written (32 bytes, hex or base64).
    pub encryption_key: Option<SecretRef>,
    /// The id written with each value, naming `encryption_key` (1 to 64 visible ASCII
    /// characters; not a secret), e.g. the month it was made.
    pub key_id: Option<String>,
    /// Older keys that only decrypt, by id.
    pub decryption_keys: Vec<DecryptionKeyConfig>,
    /// The secret the store key's name is hashed under (32 bytes or more, hex or base64).
    pub key_secret: Option<SecretRef>,
    /// The application's namespace in the store. Default: `tower-bearer:<provider>`.
    pub prefix: Option<String>,
    /// PEM root certificates to trust for `rediss://` instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// How long one store call may take, in milliseconds (default 250).
    pub timeout_ms: Option<u64>,
    /// How long all the store calls of one fetch may take together, in milliseconds (default
    /// 1000).
    pub budget_ms: Option<u64>,
    /// How long the store is skipped after it failed, in milliseconds (default 5000).
    pub retry_ms: Option<u64>,
    /// What was wrong with a secret field as read: the field, the problem (never the value).
    #[serde(skip)]
    problems: Vec<(String, &'static str)>,
}

/// An older encryption key of the `[store]` section, which only decrypts.
///
/// ```
/// use tower_bearer::config::StoreConfig;
///
/// let store: StoreConfig = toml::from_str(r#"
///     url = { env = "REDIS_URL" }
///     decryption_keys = [{ id = "2026-06", key = { file = "/run/secrets/store-key-old" } }]
/// "#).unwrap();
/// assert_eq!(store.decryption_keys[0].id, "2026-06");
/// ```
#[derive(Clone, Deserialize)]
#[serde(from = "RawDecryptionKey")]
#[non_exhaustive]
pub struct DecryptionKeyConfig {
    /// The key's id, as written with the values it encrypted.
    pub id: String,
    /// Where the key is (32 bytes, hex or base64).
    pub key: Option<SecretRef>,
    #[serde(skip)]
    problem: Option<&'static str>,
}

impl DecryptionKeyConfig {
    /// An older key `id`, found where `key` says.
    ///
    /// ```
    /// use tower_bearer::config::{DecryptionKeyConfig, SecretRef, StoreConfig};
    ///
    /// let mut store = StoreConfig::default();
    /// let old = SecretRef::Env("TOKEN_STORE_KEY_2026_06".into());
    /// store.decryption_keys.push(DecryptionKeyConfig::new("2026-06", old));
    /// assert!(format!("{store:?}").contains("TOKEN_STORE_KEY_2026_06"));
    /// ```
    pub fn new(id: impl Into<String>, key: SecretRef) -> Self {
        Self {
            id: id.into(),
            key: Some(key),
            problem: None,
        }
    }
}

impl fmt::Debug for StoreConfig {
    /// Secrets show where they are, never their value (an inline `url` included).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.url)
            .field("cluster", &self.cluster)
            .field("encryption_key", &self.encryption_key)
            .field("key_id", &self.key_id)
            .field("decryption_keys", &self.decryption_keys)
            .field("key_secret", &self.key_secret)
            .field("prefix", &self.prefix)
            .field("ca_file", &self.ca_file)
            .field("timeout_ms", &self.timeout_ms)
            .field("budget_ms", &self.budget_ms)
            .field("retry_ms", &self.retry_ms)
            .field("problems", &self.problems)
            .finish()
    }
}

impl fmt::Debug for DecryptionKeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptionKeyConfig")
            .field("id", &self.id)
            .field("key", &self.key)
            .field("problem", &self.problem)
            .finish()
    }
}

/// [`StoreConfig`] as read: a malformed secret is kept as a problem rather than failing the
/// read with an error that could quote it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStoreConfig {
    #[serde(default)]
    url: Option<SecretInput>,
    #[serde(default)]
    cluster: Option<bool>,
    #[serde(default)]
    encryption_key: Option<SecretInput>,
    #[serde(default)]
    key_id: Option<String>,
    #[serde(default)]
    decryption_keys: Vec<DecryptionKeyConfig>,
    #[serde(default)]
    key_secret: Option<SecretInput>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    ca_file: Option<PathBuf>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    budget_ms: Option<u64>,
    #[serde(default)]
    retry_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDecryptionKey {
    id: String,
    key: SecretInput,
}

impl From<RawDecryptionKey> for DecryptionKeyConfig {
    fn from(raw: RawDecryptionKey) -> Self {
        let (key, problem) = split(Some(raw.key));
        Self {
            id: raw.id,
            key,
            problem,
        }
    }
}

/// A secret field as read: the reference, or what is wrong with it.
fn split(input: Option<SecretInput>) -> (Option<SecretRef>, Option<&'static str>) {
    match input {
        None => (None, None),
        Some(SecretInput::Ref(r)) => (Some(r), None),
        Some(SecretInput::Invalid(problem)) => (None, Some(problem)),
    }
}

impl From<RawStoreConfig> for StoreConfig {
    fn from(raw: RawStoreConfig) -> Self {
        let mut problems = Vec::new();
        let mut field = |name: &str, input| {
            let (r, problem) = split(input);
            if let Some(problem) = problem {
                problems.push((format!("store.{name}"), problem));
            }
            r
        };
        let url = field("url", raw.url);
        let encryption_key = field("encryption_key", raw.encryption_key);
        let key_secret = field("key_secret", raw.key_secret);
        Self {
            url,
            cluster: raw.cluster,
            encryption_key,
            key_id: raw.key_id,
            decryption_keys: raw.decryption_keys,
            key_secret,
            prefix: raw.prefix,
            ca_file: raw.ca_file,
            timeout_ms: raw.timeout_ms,
            budget_ms: raw.budget_ms,
            retry_ms: raw.retry_ms,
            problems,
        }
    }
}

/// The `<PREFIX>_STORE_*` variables, after `<PREFIX>_STORE_`; any of them set makes a store
/// section.
pub(super) const VARIABLES: [&str; 18] = [
    "URL",
    "URL_ENV",
    "URL_FILE",
    "CLUSTER",
    "ENCRYPTION_KEY",
    "ENCRYPTION_KEY_ENV",
    "ENCRYPTION_KEY_FILE",
    "KEY_ID",
    "DECRYPTION_KEYS_ENV",
    "DECRYPTION_KEYS_FILE",
    "KEY_SECRET",
    "KEY_SECRET_ENV",
    "KEY_SECRET_FILE",
    "PREFIX",
    "CA_FILE",
    "TIMEOUT_MS",
    "BUDGET_MS",
    "RETRY_MS",
];

impl StoreConfig {
    /// The store section from `<prefix>_STORE_*` variables (read through `var`, which is given
    /// the name after `<prefix>_`), or `None` if none is set. Secrets are named, never given:
    /// `_ENV` (the variable that holds it) or `_FILE`; only a URL without a password may be
    /// given as it is, in `<prefix>_STORE_URL`.
    pub(super) fn from_vars(
        prefix: &str,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, TokenError> {
        let store = |name: &str| var(&format!("STORE_{name}"));
        if VARIABLES.iter().all(|name| store(name).is_none()) {
            return Ok(None);
        }
        let name = |suffix: &str| format!("{prefix}_STORE_{suffix}");
        let reference = |what: &str, inline: Option<String>| -> Result<_, TokenError> {
            let env = store(&format!("{what}_ENV"));
            let file = store(&format!("{what}_FILE"));
            match (inline, env, file) {
                (None, None, None) => Ok(None),
                (Some(value), None, None) => Ok(Some(SecretRef::Value(value.into()))),
                (None, Some(env), None) => Ok(Some(SecretRef::Env(env))),
                (None, None, Some(file)) => Ok(Some(SecretRef::File(file.into()))),
                _ => Err(invalid(
                    &name(what),
                    "is given more than one way",
                    format!(
                        "set only one of {} or {}",
                        name(&format!("{what}_ENV")),
                        name(&format!("{what}_FILE")),
                    ),
                )),
            }
        };
        for secret in ["ENCRYPTION_KEY", "KEY_SECRET"] {
            if store(secret).is_some() {
                return Err(invalid(
                    &name(secret),
                    "holds a secret where a reference is expected",
                    format!(
                        "name the variable that holds it in {}, or a file in {}",
                        name(&format!("{secret}_ENV")),
                        name(&format!("{secret}_FILE")),
                    ),
                ));
            }
        }
        let url = store("URL");
        if url.as_deref().is_some_and(holds_password) {
            return Err(invalid(
                &name("URL"),
                "holds a password (the URL is not shown)",
                format!(
                    "name the variable that holds the URL in {}, or a file in {}",
                    name("URL_ENV"),
                    name("URL_FILE"),
                ),
            ));
        }
        let number = |suffix: &str| -> Result<Option<u64>, TokenError> {
            store(suffix)
                .map(|v| {
                    v.trim().parse::<u64>().map_err(|_| {
                        invalid(
                            &name(suffix),
                            format!(
                                "`{}` is not a number of milliseconds",
                                crate::error::sanitize(&v)
                            ),
                            "write a whole number, e.g. 250",
                        )
                    })
                })
                .transpose()
        };
        let cluster = match store("CLUSTER").map(|v| v.trim().to_ascii_lowercase()) {
            None => None,
            Some(v) if v == "true" || v == "1" => Some(true),
            Some(v) if v == "false" || v == "0" => Some(false),
            Some(v) => {
                return Err(invalid(
                    &name("CLUSTER"),
                    format!("`{}` is not true or false", crate::error::sanitize(&v)),
                    "write true or false",
                ));
            }
        };
        let mut decryption_keys = Vec::new();
        for (suffix, make) in [
            (
                "DECRYPTION_KEYS_ENV",
                (|v: &str| SecretRef::Env(v.to_owned())) as fn(&str) -> SecretRef,
            ),
            ("DECRYPTION_KEYS_FILE", |v: &str| SecretRef::File(v.into())),
        ] {
            let Some(list) = store(suffix) else { continue };
            for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                let Some((id, at)) = entry.split_once('=') else {
                    return Err(invalid(
                        &name(suffix),
                        format!("`{}` is not `id=reference`", crate::error::sanitize(entry)),
                        format!(
                            "write comma-separated id=VAR pairs, e.g. {}=2026-06=OLD_STORE_KEY",
                            name("DECRYPTION_KEYS_ENV")
                        ),
                    ));
                };
                decryption_keys.push(DecryptionKeyConfig::new(id.trim(), make(at.trim())));
            }
        }
        Ok(Some(Self {
            url: reference("URL", url)?,
            cluster,
            encryption_key: reference("ENCRYPTION_KEY", None)?,
            key_id: store("KEY_ID"),
            decryption_keys,
            key_secret: reference("KEY_SECRET", None)?,
            prefix: store("PREFIX"),
            ca_file: store("CA_FILE").map(PathBuf::from),
            timeout_ms: number("TIMEOUT_MS")?,
            budget_ms: number("BUDGET_MS")?,
            retry_ms: number("RETRY_MS")?,
            problems: Vec::new(),
        }))
    }

    /// The first problem a secret field had as read.
    #[cfg(feature = "redis")]
    pub(super) fn problem(&self) -> Option<(String, &'static str)> {
        self.problems.first().cloned().or_else(|| {
            self.decryption_keys
                .iter()
                .enumerate()
                .find_map(|(i, k)| Some((format!("store.decryption_keys[{i}].key"), k.problem?)))
        })
    }
}

/// What [`StoreConfig::open`] makes: the store, the flow's key in it, the store's timeouts.
#[cfg(feature = "redis")]
pub(super) struct Opened {
    pub(super) store: crate::store::RedisStore,
    pub(super) key: crate::store::StoreKey,
    pub(super) timeout: std::time::Duration,
    pub(super) budget: std::time::Duration,
    pub(super) retry: std::time::Duration,
}

#[cfg(feature = "redis")]
impl StoreConfig {
    /// The Redis store this section describes and `source`'s key in it. Reads the secrets it
    /// refers to (inline ones only if `inline`); every error names the field to fix and holds
    /// no secret. Does not connect.
    pub(super) fn open<T: crate::oauth::Transport>(
        &self,
        provider: crate::providers::Provider,
        inline: bool,
        source: &crate::oauth::ClientCredentials<T>,
        syntax: &super::Syntax,
    ) -> Result<Opened, TokenError> {
        use crate::cache::{DEFAULT_STORE_BUDGET, DEFAULT_STORE_RETRY, DEFAULT_STORE_TIMEOUT};
        use crate::oauth::client::{
            MIN_STORE_SECRET_LEN, STORE_PREFIX_HINT, STORE_SECRET_HINT, check_store_prefix,
        };
        use crate::store::RedisStore;
        use secrecy::ExposeSecret;
        use std::time::Duration;

        if let Some((field, problem)) = self.problem() {
            return Err(invalid(
                &field,
                problem,
                "refer to the secret with `{ env = \"VAR\" }` or `{ file = \"path\" }`",
            ));
        }

        // A URL without a password is not a secret: it may be written as it is.
        let url_inline = inline
            || matches!(&self.url, Some(SecretRef::Value(v)) if !holds_password(v.expose_secret()));
        let url = super::read_secret(
            syntax,
            "store.url",
            "url",
            self.url.as_ref(),
            None,
            url_inline,
        )?;
        let urls: Vec<&str> = url
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        let Some(first) = urls.first() else {
            return Err(invalid(
                "store.url",
                "is empty",
                "give the Redis URL, e.g. rediss://user:password@redis.internal:6380",
            ));
        };
        let cluster = match (self.cluster, urls.len()) {
            (Some(false), n) if n > 1 => {
                return Err(invalid(
                    "store.cluster",
                    format!("is false, but `store.url` holds {n} URLs"),
                    "set `cluster = true` for a Redis Cluster, or give one URL",
                ));
            }
            (Some(cluster), _) => cluster,
            (None, n) => n > 1,
        };
        let mut builder = if cluster {
            RedisStore::cluster_builder(urls.iter().copied())
        } else {
            RedisStore::builder(*first)
        };

        let key_id = self.key_id.as_deref().ok_or_else(|| {
            invalid(
                "store.key_id",
                "is not set",
                "name the encryption key, e.g. `key_id = \"2026-12\"` (the month it was made)",
            )
        })?;
        check_key_id("store.key_id", key_id)?;
        let key = aes_key(
            syntax,
            "store.encryption_key",
            "encryption_key",
            self.encryption_key.as_ref(),
            None,
            inline,
        )?;
        builder = builder.encryption_key(key_id, &key);
        let mut ids = vec![key_id];
        for (i, old) in self.decryption_keys.iter().enumerate() {
            let field = format!("store.decryption_keys[{i}]");
            check_key_id(&format!("{field}.id"), &old.id)?;
            if ids.contains(&old.id.as_str()) {
                return Err(invalid(
                    &format!("{field}.id"),
                    format!(
                        "`{}` is already the id of another key",
                        crate::error::sanitize(&old.id)
                    ),
                    "give each key its own id",
                ));
            }
            ids.push(&old.id);
            let key = aes_key(
                syntax,
                &format!("{field}.key"),
                "key",
                old.key.as_ref(),
                old.problem,
                inline,
            )?;
            builder = builder.decryption_key(&old.id, &key);
        }

        if let Some(path) = &self.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                invalid(
                    "store.ca_file",
                    format!("cannot read `{}`: {e}", path.display()),
                    "check the path and its permissions",
                )
            })?;
            builder = builder.tls_root_certificates(pem);
        }

        let millis = |field: &str, value: Option<u64>, default: Duration| match value {
            None => Ok(default),
            Some(0) => Err(invalid(
                field,
                "is 0",
                "give a positive number of milliseconds, or leave it out for the default",
            )),
            Some(ms) => Ok(Duration::from_millis(ms)),
        };
        let timeout = millis("store.timeout_ms", self.timeout_ms, DEFAULT_STORE_TIMEOUT)?;
        let budget = millis("store.budget_ms", self.budget_ms, DEFAULT_STORE_BUDGET)?;
        let retry = millis("store.retry_ms", self.retry_ms, DEFAULT_STORE_RETRY)?;
        if timeout > budget {
            return Err(invalid(
                "store.timeout_ms",
                format!(
                    "({} ms) is longer than `store.budget_ms` ({} ms), which bounds all the store \
                     calls of one fetch",
                    timeout.as_millis(),
                    budget.as_millis()
                ),
                "make timeout_ms at most budget_ms",
            ));
        }

        // The store's own errors show the URL with its password redacted.
        let store = builder.build().map_err(|e| {
            invalid(
                "store.url",
                e,
                "check the Redis URL (redis:// or rediss://)",
            )
        })?;

        let secret = super::read_secret(
            syntax,
            "store.key_secret",
            "key_secret",
            self.key_secret.as_ref(),
            None,
            inline,
        )?;
        let secret = key_bytes(secret.expose_secret())
            .map_err(|NotKeyText| not_key_text("store.key_secret", STORE_SECRET_HINT))?;
        if secret.len() < MIN_STORE_SECRET_LEN {
            return Err(invalid(
                "store.key_secret",
                format!(
                    "is {} bytes; it must be at least {MIN_STORE_SECRET_LEN}",
                    secret.len()
                ),
                STORE_SECRET_HINT,
            ));
        }
        let prefix = match &self.prefix {
            Some(prefix) => prefix.clone(),
            None => format!("tower-bearer:{}", provider.as_str()),
        };
        check_store_prefix(&prefix)
            .map_err(|problem| invalid("store.prefix", problem, STORE_PREFIX_HINT))?;
        let key = source.store_key(&prefix, &secret)?;
        Ok(Opened {
            store,
            key,
            timeout,
            budget,
            retry,
        })
    }
}

/// What to do about an AES key that is not 32 bytes of hex or base64.
#[cfg(feature = "redis")]
const AES_KEY_HINT: &str = "give 32 random bytes as 64 hex digits (`openssl rand -hex 32`) or \
                            base64 (`openssl rand -base64 32`), from your secret store";

/// An AES-256 key: exactly 32 bytes, hex or base64, where `reference` says.
#[cfg(feature = "redis")]
fn aes_key(
    syntax: &super::Syntax,
    field: &str,
    key: &str,
    reference: Option<&SecretRef>,
    problem: Option<&str>,
    inline: bool,
) -> Result<Zeroizing<Vec<u8>>, TokenError> {
    use secrecy::ExposeSecret;
    let text = super::read_secret(syntax, field, key, reference, problem, inline)?;
    let bytes =
        key_bytes(text.expose_secret()).map_err(|NotKeyText| not_key_text(field, AES_KEY_HINT))?;
    if bytes.len() != 32 {
        return Err(invalid(
            field,
            format!("is {} bytes; an AES-256 key is exactly 32", bytes.len()),
            AES_KEY_HINT,
        ));
    }
    Ok(bytes)
}

/// The error for key material that is neither hex nor base64; never holds any of it.
#[cfg(feature = "redis")]
fn not_key_text(field: &str, hint: &'static str) -> TokenError {
    invalid(
        field,
        "is neither hex nor base64 (its value is not shown)",
        hint,
    )
}

/// A key id as the store writes it: 1 to 64 visible ASCII characters.
#[cfg(feature = "redis")]
fn check_key_id(field: &str, id: &str) -> Result<(), TokenError> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            field,
            "must be 1 to 64 visible ASCII characters (it is written, in the clear, with each \
             value)",
            "name the key by when it was made, e.g. \"2026-12\"",
        ));
    }
    Ok(())
}

/// Whether a Redis URL (or a list of them) holds a password: user information, or the `pass`
/// query parameter of a Unix socket URL.
pub(super) fn holds_password(url: &str) -> bool {
    url.contains('@') || url.to_ascii_lowercase().contains("pass=")
}

/// Key material that is neither hex nor base64 (holds none of it).
#[cfg(feature = "redis")]
#[derive(Debug, PartialEq, Eq)]
pub(super) struct NotKeyText;

/// Key material written as hex (an even number of hex digits: `openssl rand -hex 32`) or
/// base64 (standard alphabet, padding optional: `openssl rand -base64 32`), surrounding
/// whitespace ignored; hex when every character is a hex digit. The bytes are wiped on drop.
#[cfg(feature = "redis")]
pub(super) fn key_bytes(text: &str) -> Result<Zeroizing<Vec<u8>>, NotKeyText> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let text = text.trim();
    if text.is_empty() {
        return Err(NotKeyText);
    }
    let bytes = text.as_bytes();
    if bytes.len().is_multiple_of(2) && bytes.iter().all(u8::is_ascii_hexdigit) {
        let digit = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
        let mut out = Zeroizing::new(Vec::with_capacity(bytes.len() / 2));
        out.extend(
            bytes
                .chunks_exact(2)
                .map(|p| digit(p[0]) << 4 | digit(p[1])),
        );
        return Ok(out);
    }
    const BASE64: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let mut out = Zeroizing::new(Vec::with_capacity(text.len() * 3 / 4 + 3));
    // base64's error names the offending character: it is not passed on.
    BASE64.decode_vec(text, &mut out).map_err(|_| NotKeyText)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "redis")]
    #[test]
    fn key_material_is_hex_or_base64() {
        let key: Vec<u8> = (0u8..32).collect();
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let hex_upper = hex.to_ascii_uppercase();
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&key);
        let b64_unpadded = b64.trim_end_matches('=').to_owned();
        for text in [&hex, &hex_upper, &b64, &b64_unpadded, &format!(" {b64}\n")] {
            assert_eq!(
                key_bytes(text).unwrap().as_slice(),
                key.as_slice(),
                "{text}"
            );
        }
        assert_eq!(key_bytes("00ff").unwrap().as_slice(), [0, 255]);
        for bad in ["", "  ", "not base64!", "a", "ab=c", "a-b_", "%%%%"] {
            assert_eq!(key_bytes(bad).unwrap_err(), NotKeyText, "{bad:?}");
        }
    }

    #[test]
    fn passwords_in_urls_are_recognised() {
        assert!(!holds_password("redis://redis.internal:6379/0"));
        assert!(!holds_password("rediss://a:6380,rediss://b:6380"));
        assert!(holds_password("redis://:pw@redis.internal"));
        assert!(holds_password("redis://user:pw@redis.internal"));
        assert!(holds_password("redis+unix:///run/redis.sock?pass=pw"));
        assert!(holds_password("redis+unix:///run/redis.sock?PASS=pw"));
    }
}
