//! An opt-in sanity check of a JWT access token's claims before first use, as Kontrolle+ asks:
//! `aud` is one we expect, `roles` holds what we need, `exp` is in the future, `iss` is right.
//!
//! The payload is decoded **without verifying the signature**. This is a check that the
//! provider issued the token we meant to ask for (right audience, role assigned), to fail early
//! with a clear message instead of with a 401 or 403 from the API. It is not a security
//! boundary: the API verifies the signature.
//!
//! ```
//! use std::time::SystemTime;
//! use tower_bearer::oauth::ClaimsCheck;
//!
//! // {"aud": "api://kontrolle-plus", "roles": ["Reports.Read"]}
//! let jwt = "eyJhbGciOiJub25lIn0.eyJhdWQiOiJhcGk6Ly9rb250cm9sbGUtcGx1cyIsInJvbGVzIjpbIlJlcG9ydHMuUmVhZCJdfQ.";
//! let check = ClaimsCheck::new().audience("api://kontrolle-plus").require_role("ProviderApi.Access");
//! let err = check.check(jwt, SystemTime::now()).unwrap_err();
//! assert!(err.hint().unwrap().contains("assign the app role"));
//! ```

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::error::{TokenError, TokenErrorKind};

/// Decodes the claims (payload) of a JWT without verifying its signature.
///
/// ```
/// use tower_bearer::oauth::claims::decode_claims;
///
/// // {"alg":"none"} . {"aud":"api://x","roles":["ProviderApi.Access"]} . (no signature)
/// let jwt = "eyJhbGciOiJub25lIn0.eyJhdWQiOiJhcGk6Ly94Iiwicm9sZXMiOlsiUHJvdmlkZXJBcGkuQWNjZXNzIl19.";
/// let claims = decode_claims(jwt).unwrap();
/// assert_eq!(claims["aud"], "api://x");
/// ```
pub fn decode_claims(token: &str) -> Result<Map<String, Value>, TokenError> {
    let not_jwt = |why: &str| {
        TokenError::new(
            TokenErrorKind::MalformedAnswer,
            format!("the access token is not a JWT whose claims can be read: {why}"),
        )
        .with_hint("this provider issues opaque tokens: turn the claims check off for it")
    };
    let mut parts = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(not_jwt("it does not have three dot-separated parts"));
    };
    // Some issuers pad base64url; accept both.
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| not_jwt("its payload is not base64url"))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(claims)) => Ok(claims),
        _ => Err(not_jwt("its payload is not a JSON object")),
    }
}

/// What a token's claims must show. Build it with the checks you need; all must pass.
///
/// ```
/// use std::time::SystemTime;
/// use tower_bearer::oauth::claims::ClaimsCheck;
///
/// let check = ClaimsCheck::new()
///     // Entra ID v1 tokens carry the app id URI, v2 tokens the application id: accept both.
///     .audience("api://kontrolle-plus")
///     .audience("6f1c2a9e-0000-4000-8000-000000000000")
///     .require_role("ProviderApi.Access");
/// let jwt = "eyJhbGciOiJub25lIn0.eyJhdWQiOiJhcGk6Ly9vdGhlciJ9.";
/// let err = check.check(jwt, SystemTime::now()).unwrap_err();
/// assert!(err.to_string().contains("`aud`"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ClaimsCheck {
    audiences: Vec<String>,
    roles: Vec<String>,
    issuer: Option<String>,
    leeway: Duration,
}

impl ClaimsCheck {
    /// A check that only requires `exp`, if present, to be in the future.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use tower_bearer::oauth::ClaimsCheck;
    ///
    /// // {"exp": 1000}: long expired.
    /// let expired = "eyJhbGciOiJub25lIn0.eyJleHAiOjEwMDB9.";
    /// assert!(ClaimsCheck::new().check(expired, SystemTime::now()).is_err());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts this audience; with several, `aud` must contain one of them.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use tower_bearer::oauth::ClaimsCheck;
    ///
    /// // {"aud": "api://x"}
    /// let jwt = "eyJhbGciOiJub25lIn0.eyJhdWQiOiJhcGk6Ly94In0.";
    /// let check = ClaimsCheck::new().audience("api://y").audience("api://x");
    /// assert!(check.check(jwt, SystemTime::now()).is_ok(), "one of them is enough");
    /// assert!(ClaimsCheck::new().audience("api://y").check(jwt, SystemTime::now()).is_err());
    /// ```
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Requires this value in `roles`.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use tower_bearer::oauth::ClaimsCheck;
    ///
    /// // {"roles": ["ProviderApi.Access"]}
    /// let jwt = "eyJhbGciOiJub25lIn0.eyJyb2xlcyI6WyJQcm92aWRlckFwaS5BY2Nlc3MiXX0.";
    /// assert!(ClaimsCheck::new().require_role("ProviderApi.Access").check(jwt, SystemTime::now()).is_ok());
    /// let err = ClaimsCheck::new().require_role("Admin").check(jwt, SystemTime::now()).unwrap_err();
    /// assert!(err.to_string().contains("`roles` was expected to contain `Admin`"), "{err}");
    /// ```
    pub fn require_role(mut self, role: impl Into<String>) -> Self {
        self.roles.push(role.into());
        self
    }

    /// Requires `iss` to be exactly this.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use tower_bearer::oauth::ClaimsCheck;
    ///
    /// // {"iss": "https://login.example/tenant/v2.0"}
    /// let jwt = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2xvZ2luLmV4YW1wbGUvdGVuYW50L3YyLjAifQ.";
    /// let check = ClaimsCheck::new().issuer("https://login.example/tenant/v2.0");
    /// assert!(check.check(jwt, SystemTime::now()).is_ok());
    /// let other = ClaimsCheck::new().issuer("https://login.example/other/v2.0");
    /// assert!(other.check(jwt, SystemTime::now()).is_err());
    /// ```
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Tolerance for clock differences when checking `exp`. Default: none.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use tower_bearer::oauth::ClaimsCheck;
    ///
    /// // {"exp": 1000}, checked 5 s after it expired.
    /// let jwt = "eyJhbGciOiJub25lIn0.eyJleHAiOjEwMDB9.";
    /// let now = UNIX_EPOCH + Duration::from_secs(1005);
    /// assert!(ClaimsCheck::new().check(jwt, now).is_err());
    /// assert!(ClaimsCheck::new().leeway(Duration::from_secs(10)).check(jwt, now).is_ok());
    /// ```
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Checks the claims of `token` at `now`; returns them if every check passes.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use tower_bearer::oauth::ClaimsCheck;
    ///
    /// // {"aud": "api://kontrolle-plus", "roles": ["ProviderApi.Access"]}
    /// let jwt = "eyJhbGciOiJub25lIn0.eyJhdWQiOiJhcGk6Ly9rb250cm9sbGUtcGx1cyIsInJvbGVzIjpbIlByb3ZpZGVyQXBpLkFjY2VzcyJdfQ.";
    /// let check = ClaimsCheck::new().audience("api://kontrolle-plus").require_role("ProviderApi.Access");
    /// let claims = check.check(jwt, SystemTime::now()).unwrap();
    /// assert_eq!(claims["roles"][0], "ProviderApi.Access");
    /// assert!(check.check("an-opaque-token", SystemTime::now()).is_err());
    /// ```
    pub fn check(&self, token: &str, now: SystemTime) -> Result<Map<String, Value>, TokenError> {
        let claims = decode_claims(token)?;
        if !self.audiences.is_empty() {
            let aud = strings(claims.get("aud"));
            if !aud.iter().any(|a| self.audiences.iter().any(|e| e == a)) {
                return Err(mismatch(
                    "aud",
                    &format!("be one of {}", list(&self.audiences)),
                    &shown(claims.get("aud")),
                    "check the scope (`<app-id-uri>/.default`) and the expected audience: Entra \
                     v1 tokens carry the app id URI, v2 tokens the application id",
                ));
            }
        }
        let roles = strings(claims.get("roles"));
        for role in &self.roles {
            if !roles.contains(role) {
                return Err(mismatch(
                    "roles",
                    &format!("contain `{role}`"),
                    &shown(claims.get("roles")),
                    "ask the provider to assign the app role to your client (and allow-list it)",
                ));
            }
        }
        if let Some(issuer) = &self.issuer {
            let iss = claims.get("iss").and_then(Value::as_str);
            if iss != Some(issuer.as_str()) {
                return Err(mismatch(
                    "iss",
                    &format!("be `{issuer}`"),
                    &shown(claims.get("iss")),
                    "check the authority (tenant) the token was requested from",
                ));
            }
        }
        if let Some(exp) = claims.get("exp") {
            let Some(exp) = exp.as_f64().filter(|e| e.is_finite()) else {
                return Err(mismatch(
                    "exp",
                    "be a number of seconds",
                    &shown(Some(exp)),
                    "the token is malformed",
                ));
            };
            let now_secs = now
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .saturating_sub(self.leeway)
                .as_secs_f64();
            if exp <= now_secs {
                return Err(mismatch(
                    "exp",
                    "be a time in the future",
                    &format!("{exp} ({:.0} s ago)", now_secs - exp),
                    "the token endpoint issued an expired token, or this machine's clock is wrong",
                ));
            }
        }
        Ok(claims)
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("`{i}`")).collect();
    format!("[{}]", quoted.join(", "))
}

fn shown(value: Option<&Value>) -> String {
    match value {
        None => "nothing (the claim is missing)".to_owned(),
        Some(v) => crate::error::sanitize(&v.to_string()),
    }
}

fn mismatch(claim: &str, expected: &str, got: &str, hint: &'static str) -> TokenError {
    TokenError::new(
        TokenErrorKind::MalformedAnswer,
        format!("claims check failed: `{claim}` was expected to {expected}, but came as {got}"),
    )
    .with_hint(hint)
}

impl fmt::Display for ClaimsCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "aud in {}, roles {}",
            list(&self.audiences),
            list(&self.roles)
        )?;
        if let Some(iss) = &self.issuer {
            write!(f, ", iss `{iss}`")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{header}.{payload}.c2lnbmF0dXJl")
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn kontrolle() -> ClaimsCheck {
        ClaimsCheck::new()
            .audience("api://kontrolle-plus")
            .audience("11111111-2222-3333-4444-555555555555")
            .require_role("ProviderApi.Access")
    }

    #[test]
    fn a_good_token_passes_with_either_audience_shape() {
        for aud in [
            serde_json::json!("api://kontrolle-plus"),
            serde_json::json!("11111111-2222-3333-4444-555555555555"),
            serde_json::json!(["other", "api://kontrolle-plus"]),
        ] {
            let token = jwt(serde_json::json!({
                "aud": aud, "roles": ["ProviderApi.Access"], "exp": 1_800_000_600,
            }));
            assert!(kontrolle().check(&token, now()).is_ok(), "{aud}");
        }
    }

    #[test]
    fn failures_name_the_claim_the_expectation_and_what_came() {
        let token = jwt(serde_json::json!({"aud": "api://other", "roles": ["ProviderApi.Access"]}));
        let err = kontrolle().check(&token, now()).unwrap_err().to_string();
        assert!(
            err.contains("`aud`")
                && err.contains("api://kontrolle-plus")
                && err.contains("api://other"),
            "{err}"
        );

        let token = jwt(serde_json::json!({"aud": "api://kontrolle-plus", "roles": ["Reader"]}));
        let err = kontrolle().check(&token, now()).unwrap_err().to_string();
        assert!(
            err.contains("`roles`") && err.contains("ProviderApi.Access") && err.contains("Reader"),
            "{err}"
        );
        assert!(
            err.contains("`roles` was expected to contain `ProviderApi.Access`, but came as"),
            "{err}"
        );

        let token = jwt(serde_json::json!({"aud": "api://kontrolle-plus"}));
        let err = kontrolle().check(&token, now()).unwrap_err().to_string();
        assert!(err.contains("the claim is missing"), "{err}");

        let token = jwt(serde_json::json!({"exp": 1_799_999_000}));
        let err = ClaimsCheck::new()
            .check(&token, now())
            .unwrap_err()
            .to_string();
        assert!(err.contains("`exp`") && err.contains("1000 s ago"), "{err}");
        assert!(
            ClaimsCheck::new()
                .leeway(Duration::from_secs(2000))
                .check(&token, now())
                .is_ok()
        );

        let token = jwt(serde_json::json!({"iss": "https://sts.example/other/"}));
        let err = ClaimsCheck::new()
            .issuer("https://sts.example/tenant/")
            .check(&token, now())
            .unwrap_err()
            .to_string();
        assert!(err.contains("`iss`") && err.contains("other"), "{err}");
        assert!(
            err.contains("`iss` was expected to be `https://sts.example/tenant/`"),
            "{err}"
        );
    }

    #[test]
    fn opaque_and_broken_tokens_are_clear_errors() {
        for token in [
            "staG765sBUuai4OMeZiTful6PTRt",
            "a.b",
            "a.!!!.c",
            "a.b.c.d",
            "eyJ9.bm90IGpzb24.x",
        ] {
            let err = decode_claims(token).unwrap_err();
            assert_eq!(err.kind(), TokenErrorKind::MalformedAnswer);
            assert!(err.to_string().contains("not a JWT"), "{err}");
        }
    }

    #[test]
    fn the_screening_eagle_example_token_decodes() {
        let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJpbnRlZ3JhdGlvbi1kZXYtVk5aUXFEdDRIdiIsImV4cCI6MTcxNjQ2NjIxOCwianRpIjoiYjc4N2FiMTUtNDgxNS00MTFmLTkzYjctYzc5YWIxNWYwZDg3IiwiaWF0IjoxNzE1ODYxNDE4LCJpc3MiOiJTY3JlZW5pbmcgRWFnbGUgSUQiLCJzdWIiOiIxMzAyIiwic2NwIjoib3BlbmlkIGVtYWlsIHByb2ZpbGUgaW5zcGVjdCIsInNjb3BlcyI6WyJ1c2VyIl0sInVzZXJJRCI6MTMwMiwidXNlclJlZ2lvbiI6IlNHIn0.zsN5ys3qdmcJmJwzZHR9c9LC92KPTh2-NaliF2eSHFc";
        let claims = decode_claims(token).unwrap();
        assert_eq!(claims["iss"], "Screening Eagle ID");
        assert_eq!(claims["scp"], "openid email profile inspect");
        // Its `exp` (May 2024) is long past.
        let err = ClaimsCheck::new()
            .check(token, SystemTime::now())
            .unwrap_err();
        assert!(err.to_string().contains("`exp`"));
    }
}
