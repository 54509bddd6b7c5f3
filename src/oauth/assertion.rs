//! `private_key_jwt` client authentication (RFC 7523 §2.2): a short-lived JWT, signed with the
//! client's private key, that says "I am this client" to this token endpoint.
//!
//! [`JwtSigner`] signs with RS256, PS256 or ES256 from a PEM key (PKCS#8, or PKCS#1 for RSA) and
//! names the certificate in the header (`x5t#S256`, optionally `x5t`) or a `kid`, as Entra ID
//! and Kontrolle+ expect. A fresh assertion, with a unique `jti`, is made for each token request.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::error::{TokenError, TokenErrorKind};

/// Default lifetime of an assertion: long enough for clock skew, short enough to be useless if
/// it leaks.
pub const DEFAULT_ASSERTION_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// The JWS algorithm of an assertion.
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
    pub fn from_pem(pem: &str, algorithm: Algorithm) -> Result<Self, TokenError> {
        let bad = |what: String| {
            TokenError::new(TokenErrorKind::Configuration, what).with_hint(
                "give the client's private key as PEM (-----BEGIN PRIVATE KEY----- or \
                 -----BEGIN RSA PRIVATE KEY-----), matching the algorithm",
            )
        };
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
        .map_err(|e| {
            bad(format!(
                "the private key was rejected for {}: {e}",
                algorithm.name()
            ))
        })?;
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
    pub fn with_certificate_pem(mut self, pem: &str) -> Result<Self, TokenError> {
        let cert = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|_| {
            TokenError::new(
                TokenErrorKind::Configuration,
                "the certificate is not a PEM certificate",
            )
            .with_hint("give the certificate as PEM (-----BEGIN CERTIFICATE-----)")
        })?;
        self.x5t_s256 = Some(URL_SAFE_NO_PAD.encode(Sha256::digest(cert.as_ref())));
        let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, cert.as_ref());
        self.x5t = Some(URL_SAFE_NO_PAD.encode(sha1.as_ref()));
        Ok(self)
    }

    /// Also sends the SHA-1 thumbprint (`x5t`), for servers that still ask for it.
    pub fn with_x5t(mut self, include: bool) -> Self {
        self.include_x5t = include;
        self
    }

    /// Names the key by id (`kid`) in the header.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Lifetime of each assertion. Default: [`DEFAULT_ASSERTION_LIFETIME`] (5 minutes).
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// The DER of the public key (SubjectPublicKeyInfo's key bytes as ring gives them), to
    /// verify assertions in tests.
    pub fn public_key(&self) -> &[u8] {
        match &self.key {
            Key::Rsa(k) => k.public().as_ref(),
            Key::Ec(k) => k.public_key().as_ref(),
        }
    }

    /// A fresh assertion for `client_id` at `audience`, issued now.
    pub fn sign(&self, client_id: &str, audience: &str) -> Result<String, TokenError> {
        self.sign_at(client_id, audience, SystemTime::now())
    }

    /// A fresh assertion issued at `now`: `iss` = `sub` = `client_id`, `aud` = `audience`, a
    /// random `jti`, `iat` = `nbf` = now, `exp` = now + lifetime.
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
            "nbf": iat,
            "exp": iat.saturating_add(self.lifetime.as_secs().max(1)),
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
        assert_eq!(claims["nbf"], 1_800_000_000u64);
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

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
