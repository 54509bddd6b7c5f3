//! `private_key_jwt` client authentication (RFC 7523 §2.2): a short-lived JWT, signed with the
//! client's private key, that says "I am this client" to this token endpoint.
//!
//! [`JwtSigner`] signs with RS256, PS256 or ES256 from a PEM key (PKCS#8, or PKCS#1 for RSA) and
//! names the certificate in the header (`x5t#S256`, optionally `x5t`) or a `kid`, as Entra ID
//! and Kontrolle+ expect. A fresh assertion, with a unique `jti`, is made for each token request.
//!
//! ```
//! use tower_bearer::oauth::assertion::{Algorithm, JwtSigner};
//! use tower_bearer::oauth::{ClientAuth, ClientCredentialsRequest};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let key = std::fs::read_to_string("tests/fixtures/rsa-pkcs8.pem").unwrap(); // from your vault
//! let auth = ClientAuth::private_key_jwt("client-7", JwtSigner::from_pem(&key, Algorithm::Rs256).unwrap());
//! let request = ClientCredentialsRequest::new("https://login.example/oauth2/token").unwrap();
//! let http = request.http_request(&auth.credentials(request.token_url()).await.unwrap()).unwrap();
//! let body = String::from_utf8(http.into_body()).unwrap();
//! assert!(body.contains("client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"));
//! assert!(body.contains("&client_assertion=eyJ"));
//! # }
//! ```

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::error::{TokenError, TokenErrorKind};

/// Default lifetime of an assertion: long enough for clock skew, short enough to be useless if
/// it leaks.
pub const DEFAULT_ASSERTION_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// The longest lifetime [`JwtSigner::with_lifetime`] gives an assertion: a longer one is
/// clamped to this. An assertion is used once, seconds after it is made; servers refuse long
/// ones (Okta: `exp` at most an hour after `iat`).
///
/// ```
/// use std::time::Duration;
/// use tower_bearer::oauth::assertion::MAX_ASSERTION_LIFETIME;
///
/// assert_eq!(MAX_ASSERTION_LIFETIME, Duration::from_secs(3600));
/// ```
pub const MAX_ASSERTION_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// How far before the signing time an assertion's `nbf` is set, so that a token endpoint
/// whose clock is behind ours still accepts it. `iat` is the signing time itself (servers that
/// bound `exp - iat` see the lifetime asked for).
///
/// ```
/// use std::time::Duration;
/// use tower_bearer::oauth::assertion::NOT_BEFORE_LEEWAY;
///
/// assert_eq!(NOT_BEFORE_LEEWAY, Duration::from_secs(60));
/// ```
pub const NOT_BEFORE_LEEWAY: Duration = Duration::from_secs(60);

/// The JWS algorithm of an assertion.
///
/// ```
/// use tower_bearer::oauth::assertion::{Algorithm, JwtSigner};
///
/// # fn header(jwt: &str) -> serde_json::Map<String, serde_json::Value> {
/// #     let header = jwt.split('.').next().unwrap();
/// #     tower_bearer::oauth::claims::decode_claims(&format!("x.{header}.x")).unwrap()
/// # }
/// let ec_key = std::fs::read_to_string("tests/fixtures/ec-pkcs8.pem").unwrap();
/// let jwt = JwtSigner::from_pem(&ec_key, Algorithm::Es256).unwrap().sign("id", "https://as.example/token").unwrap();
/// assert_eq!(header(&jwt)["alg"], "ES256");
/// // The algorithm must fit the key.
/// assert!(JwtSigner::from_pem(&ec_key, Algorithm::Rs256).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (Entra ID's default).
    Rs256,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// ECDSA P-256 with SHA-256.
    Es256,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::Es256 => "ES256",
        }
    }
}

enum Key {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// Signs client assertions with a private key.
///
/// ```
/// use tower_bearer::oauth::assertion::{Algorithm, JwtSigner};
///
/// let key = std::fs::read_to_string("tests/fixtures/rsa-pkcs8.pem").unwrap();
/// let cert = std::fs::read_to_string("tests/fixtures/rsa-cert.pem").unwrap();
/// let signer = JwtSigner::from_pem(&key, Algorithm::Rs256)
///     .unwrap()
///     .with_certificate_pem(&cert)
///     .unwrap();
/// let jwt = signer.sign("client-id", "https://login.example/tenant/oauth2/v2.0/token").unwrap();
/// assert_eq!(jwt.split('.').count(), 3);
/// assert!(!format!("{signer:?}").contains("PRIVATE"));
/// ```
pub struct JwtSigner {
    key: Key,
    algorithm: Algorithm,
    x5t_s256: Option<String>,
    x5t: Option<String>,
    include_x5t: bool,
    kid: Option<String>,
    lifetime: Duration,
    rng: SystemRandom,
}

impl JwtSigner {
    /// A signer for a PEM private key: PKCS#8 (RSA or P-256) or PKCS#1 (RSA).
    ///
    /// ```
    /// use tower_bearer::TokenErrorKind;
    /// use tower_bearer::oauth::assertion::{Algorithm, JwtSigner};
    ///
    /// let pkcs1 = std::fs::read_to_string("tests/fixtures/rsa-pkcs1.pem").unwrap();
    /// assert!(JwtSigner::from_pem(&pkcs1, Algorithm::Ps256).is_ok());
    /// let err = JwtSigner::from_pem("not a key", Algorithm::Rs256).unwrap_err();
    /// assert_eq!(err.kind(), TokenErrorKind::Configuration);
    /// assert!(err.hint().unwrap().contains("BEGIN PRIVATE KEY"));
    /// ```
    pub fn from_pem(pem: &str, algorithm: Algorithm) -> Result<Self, TokenError> {
        let bad = |what: String| {
            TokenError::configuration(
                what,
                "give the client's private key as PEM (-----BEGIN PRIVATE KEY----- or \
                 -----BEGIN RSA PRIVATE KEY-----), matching the algorithm",
            )
        };
        let keys = <(SectionKind, Vec<u8>)>::pem_slice_iter(pem.as_bytes())
            .filter(|section| {
                section.as_ref().is_ok_and(|(kind, _)| {
                    matches!(
                        kind,
                        SectionKind::PrivateKey
                            | SectionKind::RsaPrivateKey
                            | SectionKind::EcPrivateKey
                    )
                })
            })
            .count();
        if keys > 1 {
            return Err(TokenError::configuration(
                format!("the PEM holds {keys} private keys; which one signs is not guessed"),
                "give a PEM with exactly one private key: the client's own",
            ));
        }
        let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|_| bad("the private key is not a PEM private key".to_owned()))?;
        let rng = SystemRandom::new();
        let key = match (algorithm, &der) {
            (Algorithm::Rs256 | Algorithm::Ps256, PrivateKeyDer::Pkcs8(k)) => {
                RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()).map(Key::Rsa)
            }
            (Algorithm::Rs256 | Algorithm::Ps256, PrivateKeyDer::Pkcs1(k)) => {
                RsaKeyPair::from_der(k.secret_pkcs1_der()).map(Key::Rsa)
            }
            (Algorithm::Es256, PrivateKeyDer::Pkcs8(k)) => EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                k.secret_pkcs8_der(),
                &rng,
            )
            .map(Key::Ec),
            (algorithm, _) => {
                return Err(bad(format!(
                    "a {} key needs PKCS#8{}",
                    algorithm.name(),
                    if algorithm == Algorithm::Es256 {
                        ""
                    } else {
                        " or PKCS#1"
                    }
                )));
            }
        }
        .map_err(|e| key_rejected(algorithm, e))?;
        Ok(Self {
            key,
            algorithm,
            x5t_s256: None,
            x5t: None,
            include_x5t: false,
            kid: None,
            lifetime: DEFAULT_ASSERTION_LIFETIME,
            rng,
        })
    }

    /// Names the client's certificate in the header by its SHA-256 thumbprint (`x5t#S256`).
    ///
    /// The PEM may hold a chain, in any order: the certificate named is the one whose public
    /// key is this signer's (so a chain with the CA first still names the client's own
    /// certificate). A PEM none of whose certificates has this key is refused: the server
    /// would look up a certificate that does not verify the assertions.
    ///
    /// ```
    /// use tower_bearer::oauth::assertion::{Algorithm, JwtSigner};
    ///
    /// let key = std::fs::read_to_string("tests/fixtures/rsa-pkcs8.pem").unwrap();
    /// let signer = JwtSigner::from_pem(&key, Algorithm::Rs256).unwrap();
    /// let other = std::fs::read_to_string("tests/fixtures/server-cert.pem").unwrap();
    /// let err = signer.with_certificate_pem(&other).unwrap_err();
    /// assert_eq!(err.kind(), tower_bearer::TokenErrorKind::Configuration);
    /// ```
    pub fn with_certificate_pem(mut self, pem: &str) -> Result<Self, TokenError> {
        let not_pem = || {
            TokenError::configuration(
                "the certificate is not a PEM certificate",
                "give the certificate as PEM (-----BEGIN CERTIFICATE-----)",
            )
        };
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| not_pem())?;
        if certs.is_empty() {
            return Err(not_pem());
        }
        let public_key = self.public_key().to_vec();
        let mut unreadable = 0;
        let mut matching = None;
        for cert in &certs {
            match der::certificate_public_key(cert.as_ref()) {
                Some(key) if key == public_key.as_slice() => {
                    matching = Some(cert);
                    break;
                }
                Some(_) => {}
                None => unreadable += 1,
            }
        }
        let Some(cert) = matching else {
            let message = match (certs.len(), unreadable) {
                (1, 0) => "the certificate's public key is not the private key's: they are not a \
                           pair"
                    .to_owned(),
                (n, 0) => format!(
                    "none of the {n} certificates in the PEM has the private key's public key"
                ),
                (n, u) => format!(
                    "none of the {n} certificates in the PEM has the private key's public key \
                     ({u} could not be read as X.509)"
                ),
            };
            return Err(TokenError::configuration(
                message,
                "give the certificate issued for this private key (the one registered \
                     with the identity provider), or the key that belongs to the certificate",
            ));
        };
        self.x5t_s256 = Some(URL_SAFE_NO_PAD.encode(Sha256::digest(cert.as_ref())));
        let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, cert.as_ref());
        self.x5t = Some(URL_SAFE_NO_PAD.encode(sha1.as_ref()));
        Ok(self)
    }

    /// Also sends the SHA-1 thumbprint (`x5t`), for servers that still ask for it.
    ///
    /// ```
    /// use tower_bearer::oauth::assertion::{Algorithm, JwtSigner};
    ///
    /// # fn header(jwt: &str) -> serde_json::Map<String, serde_json::Value> {
    /// #     let header = jwt.split('.').next().unwrap();
    /// #     tower_bearer::oauth::claims::decode_claims(&format!("x.{header}.x")).unwrap()
    /// # }
    /// let key = std::fs::read_to_string("tests/fixtures/rsa-pkcs8.pem").unwrap();
    /// let cert = std::fs::read_to_string("tests/fixtures/rsa-cert.pem").unwrap();
    /// let signer = JwtSigner::from_pem(&key, Algorithm::Rs256).unwrap()
    ///     .with_certificate_pem(&cert).unwrap()
    ///     .with_x5t(true);
    /// let jwt = signer.sign("client-id", "https://as.example/token").unwrap();
    /// assert!(header(&jwt).contains_key("x5t") && header(&jwt).contains_key("x5t#S256"));
    /// ```
    pub fn with_x5t(mut self, include: bool) -> Self {
        self.include_x5t = include;
        self
    }

    /// Names the key by id (`kid`) in the header.
    ///
    /// ```
    /// use tower_bearer::oauth::assertion::{Algorithm, JwtSigner};
    ///
    /// # fn header(jwt: &str) -> serde_json::Map<String, serde_json::Value> {
    /// #     let header = jwt.split('.').next().unwrap();
    /// #     tower_bearer::oauth::claims::decode_claims(&format!("x.{header}.x")).unwrap()
    /// # }
    /// let key = std::fs::read_to_string("tests/fixtures/ec-pkcs8.pem").unwrap();
    /// let signer = JwtSigner::from_pem(&key, Algorithm::Es256).unwrap().with_kid("signing-2026-01");
    /// let jwt = signer.sign("client-id", "https://as.example/token").unwrap();
    /// assert_eq!(header(&jwt)["kid"], "signing-2026-01");
    /// ```
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Lifetime of each assertion: `exp` is the signing time plus this. Default:
    /// [`DEFAULT_ASSERTION_LIFETIME`] (5 minutes). Clamped to 1 second ..=
    /// [`MAX_ASSERTION_LIFETIME`] (1 hour): a longer lifetime gives a 1-hour assertion.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::oauth::assertion::{Algorithm, JwtSigner};
    ///
    /// let key = std::fs::read_to_string("tests/fixtures/rsa-pkcs8.pem").unwrap();
    /// let signer = JwtSigner::from_pem(&key, Algorithm::Rs256)
    ///     .unwrap()
    ///     .with_lifetime(Duration::MAX);
    /// assert!(format!("{signer:?}").contains("3600s"));
    /// ```
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime.clamp(Duration::from_secs(1), MAX_ASSERTION_LIFETIME);
        self
    }

    /// The DER of the public key (SubjectPublicKeyInfo's key bytes as ring gives them), to
    /// verify assertions in tests.
    ///
    /// ```
    /// use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
    /// use tower_bearer::oauth::assertion::{Algorithm, JwtSigner};
    /// # use base64::Engine;
    ///
    /// let key = std::fs::read_to_string("tests/fixtures/rsa-pkcs8.pem").unwrap();
    /// let signer = JwtSigner::from_pem(&key, Algorithm::Rs256).unwrap();
    /// let jwt = signer.sign("client-id", "https://as.example/token").unwrap();
    /// let (signed, signature) = jwt.rsplit_once('.').unwrap();
    /// # let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature).unwrap();
    /// let public_key = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, signer.public_key());
    /// assert!(public_key.verify(signed.as_bytes(), &signature).is_ok());
    /// ```
    pub fn public_key(&self) -> &[u8] {
        match &self.key {
            Key::Rsa(k) => k.public().as_ref(),
            Key::Ec(k) => k.public_key().as_ref(),
        }
    }

    /// What names this signer's credential in a store key (none of it secret): the SHA-256 of
    /// the public key (hex), the certificate's `x5t#S256` and the `kid` (empty if unset).
    #[cfg(feature = "redis")]
    pub(crate) fn key_identity(&self) -> [String; 3] {
        let public_key: String = Sha256::digest(self.public_key())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        [
            public_key,
            self.x5t_s256.clone().unwrap_or_default(),
            self.kid.clone().unwrap_or_default(),
        ]
    }

    /// A fresh assertion for `client_id` at `audience`, issued now.
    ///
    /// ```
    /// use tower_bearer::oauth::assertion::{Algorithm, JwtSigner};
    /// use tower_bearer::oauth::claims::decode_claims;
    ///
    /// let key = std::fs::read_to_string("tests/fixtures/rsa-pkcs8.pem").unwrap();
    /// let signer = JwtSigner::from_pem(&key, Algorithm::Rs256).unwrap();
    /// let (a, b) = (signer.sign("client-7", "https://as.example/token").unwrap(),
    ///               signer.sign("client-7", "https://as.example/token").unwrap());
    /// let (a, b) = (decode_claims(&a).unwrap(), decode_claims(&b).unwrap());
    /// assert_eq!((&a["iss"], &a["sub"], &a["aud"]), (&"client-7".into(), &"client-7".into(), &"https://as.example/token".into()));
    /// assert_ne!(a["jti"], b["jti"], "each assertion is fresh");
    /// ```
    pub fn sign(&self, client_id: &str, audience: &str) -> Result<String, TokenError> {
        self.sign_at(client_id, audience, SystemTime::now())
    }

    /// A fresh assertion issued at `now`: `iss` = `sub` = `client_id`, `aud` = `audience`, a
    /// random `jti`, `iat` = now, `nbf` = now - [`NOT_BEFORE_LEEWAY`] (60 s, for a token
    /// endpoint whose clock is behind), `exp` = now + lifetime.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use tower_bearer::oauth::assertion::{Algorithm, JwtSigner};
    /// use tower_bearer::oauth::claims::decode_claims;
    ///
    /// let key = std::fs::read_to_string("tests/fixtures/ec-pkcs8.pem").unwrap();
    /// let signer = JwtSigner::from_pem(&key, Algorithm::Es256).unwrap();
    /// let at = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    /// let claims = decode_claims(&signer.sign_at("id", "https://as.example/token", at).unwrap()).unwrap();
    /// assert_eq!((claims["iat"].as_u64(), claims["nbf"].as_u64()), (Some(1_800_000_000), Some(1_799_999_940)));
    /// assert_eq!(claims["exp"].as_u64(), Some(1_800_000_300), "5 minutes by default");
    /// ```
    pub fn sign_at(
        &self,
        client_id: &str,
        audience: &str,
        now: SystemTime,
    ) -> Result<String, TokenError> {
        let failed =
            || TokenError::new(TokenErrorKind::Other, "signing the client assertion failed");
        let mut header = serde_json::Map::new();
        header.insert("alg".into(), self.algorithm.name().into());
        header.insert("typ".into(), "JWT".into());
        if let Some(t) = &self.x5t_s256 {
            header.insert("x5t#S256".into(), t.clone().into());
        }
        if let (true, Some(t)) = (self.include_x5t, &self.x5t) {
            header.insert("x5t".into(), t.clone().into());
        }
        if let Some(kid) = &self.kid {
            header.insert("kid".into(), kid.clone().into());
        }
        let mut jti = [0u8; 16];
        self.rng.fill(&mut jti).map_err(|_| failed())?;
        let iat = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let claims = serde_json::json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "jti": jti.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "iat": iat,
            "nbf": iat.saturating_sub(NOT_BEFORE_LEEWAY.as_secs()),
            "exp": iat.saturating_add(self.lifetime.as_secs().clamp(1, MAX_ASSERTION_LIFETIME.as_secs())),
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::Value::Object(header).to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = match &self.key {
            Key::Rsa(key) => {
                let padding: &dyn signature::RsaEncoding = match self.algorithm {
                    Algorithm::Ps256 => &signature::RSA_PSS_SHA256,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0; key.public().modulus_len()];
                key.sign(padding, &self.rng, signing_input.as_bytes(), &mut sig)
                    .map_err(|_| failed())?;
                sig
            }
            Key::Ec(key) => key
                .sign(&self.rng, signing_input.as_bytes())
                .map_err(|_| failed())?
                .as_ref()
                .to_vec(),
        };
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// ring's refusal of a private key, with what to do about it.
fn key_rejected(algorithm: Algorithm, rejected: ring::error::KeyRejected) -> TokenError {
    let reason = rejected.to_string();
    let (what, hint): (&str, &'static str) = match (algorithm, reason.as_str()) {
        (Algorithm::Rs256 | Algorithm::Ps256, "TooSmall") => (
            "the RSA key is too small",
            "RSA signing keys must be 2048 to 4096 bits: generate a 2048- or 3072-bit key \
             (openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072)",
        ),
        (Algorithm::Rs256 | Algorithm::Ps256, "TooLarge") => (
            "the RSA key is too large",
            "RSA signing keys must be 2048 to 4096 bits: generate a 2048- or 3072-bit key \
             (openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072)",
        ),
        (_, "PrivateModulusLenNotMultipleOf512Bits") => (
            "the RSA key's size is not a multiple of 512 bits",
            "RSA signing keys must be 2048, 2560, 3072, 3584 or 4096 bits",
        ),
        (Algorithm::Es256, "WrongAlgorithm") => (
            "the key is not a P-256 (prime256v1) EC key",
            "ES256 needs a P-256 key; for an RSA key use RS256 or PS256",
        ),
        (_, "WrongAlgorithm") => (
            "the key is not an RSA key",
            "RS256 and PS256 need an RSA key; for a P-256 EC key use ES256",
        ),
        (_, "PublicKeyIsMissing") => (
            "the PKCS#8 key does not include its public key",
            "convert it with `openssl pkcs8 -topk8 -nocrypt -in key.pem`, which includes it",
        ),
        (_, "VersionNotSupported") => (
            "the key's PKCS#8 version is not supported",
            "convert it with `openssl pkcs8 -topk8 -nocrypt -in key.pem`",
        ),
        (_, "InconsistentComponents" | "InvalidComponent") => (
            "the key's components are not consistent (a damaged or unusual key: multi-prime \
             RSA, a small public exponent)",
            "generate a new key with openssl (genpkey), or check that the whole PEM was copied",
        ),
        (_, "InvalidEncoding") => (
            "the key's DER encoding is not valid",
            "check that the whole PEM was copied, or convert it with `openssl pkcs8 -topk8 \
             -nocrypt -in key.pem`",
        ),
        _ => (
            "the private key was rejected",
            "give the client's private key as PEM (-----BEGIN PRIVATE KEY----- or -----BEGIN \
             RSA PRIVATE KEY-----), matching the algorithm",
        ),
    };
    TokenError::configuration(format!("{what} for {} ({reason})", algorithm.name()), hint)
}

/// Just enough DER to find a certificate's public key: the `subjectPublicKey` bits of the
/// `SubjectPublicKeyInfo` in an X.509 `TBSCertificate` (RFC 5280 §4.1). For RSA they are the
/// `RSAPublicKey` DER and for EC the uncompressed point, which is what ring gives for a key
/// pair's public key.
mod der {
    const SEQUENCE: u8 = 0x30;
    const BIT_STRING: u8 = 0x03;
    const VERSION: u8 = 0xa0;

    /// The first element of `input`: `(tag, contents, rest)`.
    fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        if tag & 0x1f == 0x1f {
            return None; // high tag numbers: not in a certificate's outer structure
        }
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |len, &b| (len << 8) | usize::from(b));
            (len, &rest[n..])
        };
        if rest.len() < len {
            return None;
        }
        Some((tag, &rest[..len], &rest[len..]))
    }

    fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (found, contents, rest) = element(input)?;
        (found == tag).then_some((contents, rest))
    }

    /// The certificate's `subjectPublicKey` (without the BIT STRING's unused-bits byte).
    pub(super) fn certificate_public_key(cert: &[u8]) -> Option<&[u8]> {
        let (certificate, _) = expect(cert, SEQUENCE)?;
        let (tbs, _) = expect(certificate, SEQUENCE)?;
        let mut rest = tbs;
        if let Some((VERSION, _, after)) = element(rest) {
            rest = after;
        }
        // serialNumber, signature, issuer, validity, subject
        for _ in 0..5 {
            rest = element(rest)?.2;
        }
        let (spki, _) = expect(rest, SEQUENCE)?;
        let (_algorithm, spki) = expect(spki, SEQUENCE)?;
        let (bits, _) = expect(spki, BIT_STRING)?;
        match bits.split_first()? {
            (0, key) => Some(key),
            _ => None,
        }
    }
}

impl fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSigner")
            .field("algorithm", &self.algorithm)
            .field("x5t#S256", &self.x5t_s256)
            .field("kid", &self.kid)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const RSA_PKCS8: &str = include_str!("../../tests/fixtures/rsa-pkcs8.pem");
    const RSA_PKCS1: &str = include_str!("../../tests/fixtures/rsa-pkcs1.pem");
    const EC_PKCS8: &str = include_str!("../../tests/fixtures/ec-pkcs8.pem");
    const CERT: &str = include_str!("../../tests/fixtures/rsa-cert.pem");
    const AUD: &str = "https://login.example/tenant/oauth2/v2.0/token";

    fn part(jwt: &str, i: usize) -> Value {
        let b = URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(i).unwrap())
            .unwrap();
        serde_json::from_slice(&b).unwrap()
    }

    fn verify(jwt: &str, alg: &'static dyn signature::VerificationAlgorithm, public: &[u8]) {
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        signature::UnparsedPublicKey::new(alg, public)
            .verify(input.as_bytes(), &sig)
            .expect("the assertion verifies with the public key");
    }

    #[test]
    fn rs256_assertion_has_the_rfc7523_claims_and_verifies() {
        let signer = JwtSigner::from_pem(RSA_PKCS8, Algorithm::Rs256)
            .unwrap()
            .with_certificate_pem(CERT)
            .unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let jwt = signer.sign_at("client-id", AUD, now).unwrap();
        let header = part(&jwt, 0);
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["typ"], "JWT");
        // openssl x509 -in tests/fixtures/rsa-cert.pem -noout -fingerprint -sha256
        let expected = hex("BFCDD7C2F3CF2D4E44713F845CA157CFA23F4736982CC4FBA07063DAFCB621DA");
        assert_eq!(header["x5t#S256"], URL_SAFE_NO_PAD.encode(expected));
        assert!(header.get("x5t").is_none());
        let claims = part(&jwt, 1);
        assert_eq!(claims["iss"], "client-id");
        assert_eq!(claims["sub"], "client-id");
        assert_eq!(claims["aud"], AUD);
        assert_eq!(claims["iat"], 1_800_000_000u64);
        assert_eq!(claims["nbf"], 1_799_999_940u64);
        assert_eq!(claims["exp"], 1_800_000_300u64);
        assert_eq!(claims["jti"].as_str().unwrap().len(), 32);
        verify(
            &jwt,
            &signature::RSA_PKCS1_2048_8192_SHA256,
            signer.public_key(),
        );
    }

    #[test]
    fn every_assertion_has_a_new_jti() {
        let signer = JwtSigner::from_pem(RSA_PKCS1, Algorithm::Rs256).unwrap();
        let a = part(&signer.sign("c", AUD).unwrap(), 1)["jti"].clone();
        let b = part(&signer.sign("c", AUD).unwrap(), 1)["jti"].clone();
        assert_ne!(a, b);
    }

    #[test]
    fn ps256_and_es256_verify() {
        let signer = JwtSigner::from_pem(RSA_PKCS8, Algorithm::Ps256).unwrap();
        let jwt = signer.sign("c", AUD).unwrap();
        assert_eq!(part(&jwt, 0)["alg"], "PS256");
        verify(
            &jwt,
            &signature::RSA_PSS_2048_8192_SHA256,
            signer.public_key(),
        );

        let signer = JwtSigner::from_pem(EC_PKCS8, Algorithm::Es256)
            .unwrap()
            .with_kid("key-1");
        let jwt = signer.sign("c", AUD).unwrap();
        assert_eq!(part(&jwt, 0)["kid"], "key-1");
        verify(
            &jwt,
            &signature::ECDSA_P256_SHA256_FIXED,
            signer.public_key(),
        );
    }

    #[test]
    fn x5t_on_request() {
        let signer = JwtSigner::from_pem(RSA_PKCS8, Algorithm::Rs256)
            .unwrap()
            .with_certificate_pem(CERT)
            .unwrap()
            .with_x5t(true);
        let header = part(&signer.sign("c", AUD).unwrap(), 0);
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(header["x5t"].as_str().unwrap())
                .unwrap()
                .len(),
            20
        );
    }

    #[test]
    fn wrong_keys_are_configuration_errors() {
        for (pem, alg) in [
            ("not a key", Algorithm::Rs256),
            (EC_PKCS8, Algorithm::Rs256),
            (RSA_PKCS8, Algorithm::Es256),
            (RSA_PKCS1, Algorithm::Es256),
            (CERT, Algorithm::Rs256),
        ] {
            let Err(err) = JwtSigner::from_pem(pem, alg) else {
                panic!("{alg:?} accepted a wrong key");
            };
            assert_eq!(err.kind(), TokenErrorKind::Configuration);
            assert!(!err.to_string().contains("PRIVATE KEY-----\nMI"));
        }
        let err = JwtSigner::from_pem(RSA_PKCS8, Algorithm::Rs256)
            .unwrap()
            .with_certificate_pem("nope")
            .unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::Configuration);
    }

    const CHAIN_CA_FIRST: &str = include_str!("../../tests/fixtures/rsa-chain-ca-first.pem");
    const EC_CERT: &str = include_str!("../../tests/fixtures/ec-cert.pem");
    const OTHER_RSA_CERT: &str = include_str!("../../tests/fixtures/server-cert.pem");
    const CA_CERT: &str = include_str!("../../tests/fixtures/ca-cert.pem");
    const TWO_KEYS: &str = include_str!("../../tests/fixtures/two-keys.pem");
    const RSA_1024: &str = include_str!("../../tests/fixtures/rsa-1024-pkcs8.pem");
    const RSA_4608: &str = include_str!("../../tests/fixtures/rsa-4608-pkcs8.pem");

    fn x5t_s256(signer: &JwtSigner) -> Value {
        part(&signer.sign("c", AUD).unwrap(), 0)["x5t#S256"].clone()
    }

    #[test]
    fn x5t_names_the_signing_keys_certificate_in_a_chain_with_the_ca_first() {
        let own = JwtSigner::from_pem(RSA_PKCS8, Algorithm::Rs256)
            .unwrap()
            .with_certificate_pem(CERT)
            .unwrap();
        let chain = JwtSigner::from_pem(RSA_PKCS8, Algorithm::Rs256)
            .unwrap()
            .with_certificate_pem(CHAIN_CA_FIRST)
            .unwrap();
        let expected = hex("BFCDD7C2F3CF2D4E44713F845CA157CFA23F4736982CC4FBA07063DAFCB621DA");
        assert_eq!(x5t_s256(&chain), URL_SAFE_NO_PAD.encode(expected));
        assert_eq!(x5t_s256(&chain), x5t_s256(&own));
        let es = JwtSigner::from_pem(EC_PKCS8, Algorithm::Es256)
            .unwrap()
            .with_certificate_pem(&format!("{CA_CERT}{EC_CERT}"))
            .unwrap();
        let der = CertificateDer::from_pem_slice(EC_CERT.as_bytes()).unwrap();
        assert_eq!(
            x5t_s256(&es),
            URL_SAFE_NO_PAD.encode(Sha256::digest(der.as_ref()))
        );
    }

    #[test]
    fn a_certificate_of_another_key_is_refused_at_build() {
        for (key, alg, cert) in [
            (RSA_PKCS8, Algorithm::Rs256, OTHER_RSA_CERT),
            (RSA_PKCS1, Algorithm::Ps256, CA_CERT),
            (RSA_PKCS8, Algorithm::Rs256, EC_CERT),
            (EC_PKCS8, Algorithm::Es256, CERT),
            (EC_PKCS8, Algorithm::Es256, CHAIN_CA_FIRST),
        ] {
            let err = JwtSigner::from_pem(key, alg)
                .unwrap()
                .with_certificate_pem(cert)
                .unwrap_err();
            assert_eq!(err.kind(), TokenErrorKind::Configuration);
            assert!(err.to_string().contains("public key"), "{alg:?}: {err}");
            assert!(
                err.hint()
                    .unwrap()
                    .contains("certificate issued for this private key"),
                "{err:?}"
            );
        }
        let err = JwtSigner::from_pem(RSA_PKCS8, Algorithm::Rs256)
            .unwrap()
            .with_certificate_pem(CHAIN_CA_FIRST.replace(CERT, "").as_str())
            .unwrap_err();
        assert!(err.to_string().contains("not a pair"), "{err}");
    }

    #[test]
    fn assertion_lifetime_is_capped_at_an_hour_without_overflow() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for (asked, lifetime) in [
            (Duration::MAX, 3600u64),
            (Duration::from_secs(u64::MAX), 3600),
            (Duration::from_secs(7200), 3600),
            (Duration::from_secs(3600), 3600),
            (Duration::from_secs(90), 90),
            (Duration::ZERO, 1),
        ] {
            let signer = JwtSigner::from_pem(RSA_PKCS8, Algorithm::Rs256)
                .unwrap()
                .with_lifetime(asked);
            let claims = part(&signer.sign_at("c", AUD, now).unwrap(), 1);
            assert_eq!(claims["exp"], 1_800_000_000 + lifetime, "{asked:?}");
        }
    }

    #[test]
    fn not_before_is_back_dated_for_clock_skew() {
        let signer = JwtSigner::from_pem(EC_PKCS8, Algorithm::Es256).unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let claims = part(&signer.sign_at("c", AUD, now).unwrap(), 1);
        assert_eq!(claims["iat"], 1_800_000_000u64);
        assert_eq!(claims["nbf"], 1_800_000_000u64 - 60);
        assert_eq!(claims["exp"], 1_800_000_000u64 + 300);
        // At the epoch: no underflow.
        let claims = part(&signer.sign_at("c", AUD, UNIX_EPOCH).unwrap(), 1);
        assert_eq!(claims["nbf"], 0);
    }

    #[test]
    fn a_pem_with_two_private_keys_is_refused() {
        for alg in [Algorithm::Rs256, Algorithm::Es256] {
            let Err(err) = JwtSigner::from_pem(TWO_KEYS, alg) else {
                panic!("{alg:?}: a PEM with two keys was accepted");
            };
            assert_eq!(err.kind(), TokenErrorKind::Configuration);
            assert!(err.to_string().contains("2 private keys"), "{err}");
            assert!(!format!("{err:?}").contains("MII"));
        }
        // One key and its certificate in one PEM is fine.
        assert!(JwtSigner::from_pem(&format!("{CERT}{RSA_PKCS8}"), Algorithm::Rs256).is_ok());
    }

    #[test]
    fn rejected_keys_say_what_to_fix() {
        for (pem, alg, says, hint) in [
            (RSA_1024, Algorithm::Rs256, "too small", "2048 to 4096 bits"),
            (RSA_4608, Algorithm::Ps256, "too large", "2048 to 4096 bits"),
            (EC_PKCS8, Algorithm::Rs256, "", "ES256"),
        ] {
            let Err(err) = JwtSigner::from_pem(pem, alg) else {
                panic!("{alg:?} accepted a key ring refuses");
            };
            assert_eq!(err.kind(), TokenErrorKind::Configuration);
            assert!(err.to_string().contains(says), "{err}");
            assert!(err.hint().unwrap().contains(hint), "{err:?}");
        }
    }

    #[test]
    fn der_walk_refuses_what_is_not_a_certificate() {
        assert_eq!(der::certificate_public_key(&[]), None);
        assert_eq!(der::certificate_public_key(&[0x30, 0x82, 0xff]), None);
        assert_eq!(
            der::certificate_public_key(&[0x30, 0x03, 0x30, 0x01, 0x00]),
            None
        );
        let cert = CertificateDer::from_pem_slice(CERT.as_bytes()).unwrap();
        for cut in [1, 10, 100, cert.len() / 2] {
            assert_eq!(der::certificate_public_key(&cert[..cut]), None, "{cut}");
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
