//! Access tokens: EdDSA JWTs signed with the vault's newest signing key and verified against
//! every published key (by `kid`), so tokens signed before a rotation stay valid until they
//! expire. Validation is strict: one algorithm, `exp`, `nbf`, `iss`, `aud` and `sub` required
//! (a wrong-typed `exp`/`nbf` is a failure, not an absence), and `jku`/`jwk`/`x5u` headers
//! ignored (RFC 8725 §3.10). Client tokens carry `cnf.x5t#S256`, the thumbprint of the
//! certificate they were issued over (RFC 8705); the caller compares it with the connection's.
//! Verified tokens are remembered until they expire (`VerifiedTokens`): a department system
//! presents the same token on every request for minutes, and each Ed25519 verification costs
//! 40–180 µs.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::time::{Clock, SystemClock};
use crate::vault::{Ed25519Key, Vault};

/// The audience every hub token carries.
pub const AUDIENCE: &str = "gridhub";

#[derive(Debug, Serialize, Deserialize, Clone)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    /// `user` (console/API users) or `client` (department systems).
    pub kind: String,
    /// Certificate binding; present on every client token, never on user tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// RFC 8705 §3.1 confirmation claim.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct Confirmation {
    #[serde(rename = "x5t#S256")]
    pub x5t_s256: String,
}

pub const KIND_USER: &str = "user";
pub const KIND_CLIENT: &str = "client";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token is invalid")]
    Invalid,
    #[error("cannot sign token")]
    Sign,
}

pub struct TokenIssuer {
    issuer: String,
    ttl_secs: i64,
    kid: String,
    /// The current signing key, held by the vault.
    signing: Arc<Ed25519Key>,
    decoding: HashMap<String, DecodingKey>,
    jwks: serde_json::Value,
    validation: Validation,
    verified: VerifiedTokens,
    /// What "now" is for `iat`, `nbf` and `exp`: the hub's clock (tests move it).
    clock: Arc<dyn Clock>,
}

/// Seconds of clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: i64 = 5;

/// Tokens this issuer verified, with their claims, until `exp` (+ leeway). Keyed by the whole
/// token text: a token that differs in any byte is verified afresh, and only successes are
/// kept. Bounded: when full, expired entries are dropped, and if none are, all of them.
struct VerifiedTokens {
    entries: std::sync::Mutex<HashMap<Box<str>, Claims>>,
}

/// Verified tokens remembered at most (each ~1 kB).
const VERIFIED_CAPACITY: usize = 8_192;

impl VerifiedTokens {
    fn new() -> VerifiedTokens {
        VerifiedTokens {
            entries: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The claims of `token` if it was verified and has not expired at `now` (Unix seconds).
    fn get(&self, token: &str, now: i64) -> Option<Claims> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(token)
            .filter(|c| now <= c.exp.saturating_add(LEEWAY_SECS))
            .cloned()
    }

    fn insert(&self, token: &str, claims: &Claims, now: i64) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= VERIFIED_CAPACITY {
            entries.retain(|_, c| now <= c.exp.saturating_add(LEEWAY_SECS));
            if entries.len() >= VERIFIED_CAPACITY {
                entries.clear();
            }
        }
        entries.insert(token.into(), claims.clone());
    }
}

impl TokenIssuer {
    pub fn new(vault: &Vault, issuer: String, ttl_secs: u64) -> Result<TokenIssuer, TokenError> {
        let current = vault.current_signing_key().ok_or(TokenError::Sign)?;
        let mut decoding = HashMap::new();
        let mut keys = Vec::new();
        for key in vault.signing_keys() {
            let public_key = key.key.public_key();
            decoding.insert(key.kid.clone(), DecodingKey::from_ed_der(public_key));
            keys.push(serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                "kid": key.kid, "x": URL_SAFE_NO_PAD.encode(public_key),
            }));
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[issuer.as_str()]);
        // `exp` and `nbf` must be present (and numbers: `Claims` holds them as integers), but
        // they are compared with the hub's clock in `verify`, not with the system time that
        // jsonwebtoken would read.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        Ok(TokenIssuer {
            issuer,
            ttl_secs: i64::try_from(ttl_secs).unwrap_or(300),
            kid: current.kid.clone(),
            signing: Arc::clone(&current.key),
            decoding,
            jwks: serde_json::json!({ "keys": keys }),
            validation,
            verified: VerifiedTokens::new(),
            clock: Arc::new(SystemClock),
        })
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// The public keys as a JWK Set (for `/.well-known/jwks.json`).
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    /// A token for a console/API user.
    pub fn issue_user(&self, user_id: &str) -> Result<String, TokenError> {
        self.issue(user_id, KIND_USER, None)
    }

    /// A token for a department client, bound to the certificate it authenticated with.
    pub fn issue_client(&self, client_id: &str, thumbprint: &str) -> Result<String, TokenError> {
        self.issue(
            client_id,
            KIND_CLIENT,
            Some(Confirmation {
                x5t_s256: thumbprint.to_owned(),
            }),
        )
    }

    /// A signed document (compact JWS, EdDSA, `kid` of the current key, header `typ`), such as
    /// a grant artefact: verifiable offline with the published JWKS. `claims` should carry
    /// `iss`, `sub`, `iat` and, for documents with a window, `nbf`/`exp`.
    pub fn sign_document(&self, typ: &str, claims: &impl Serialize) -> Result<String, TokenError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.to_owned());
        self.compact_jws(&header, claims)
    }

    /// This issuer with `clock` as its time (the hub's injected clock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> TokenIssuer {
        self.clock = clock;
        self
    }

    /// Unix seconds now, by the issuer's clock.
    fn now_secs(&self) -> i64 {
        self.clock.now_ms().div_euclid(1000)
    }

    /// The `iss` of every hub token and document.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    fn issue(
        &self,
        subject: &str,
        kind: &str,
        cnf: Option<Confirmation>,
    ) -> Result<String, TokenError> {
        let now = self.now_secs();
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: subject.to_owned(),
            aud: AUDIENCE.to_owned(),
            exp: now + self.ttl_secs,
            nbf: now,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            kind: kind.to_owned(),
            cnf,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        self.compact_jws(&header, &claims)
    }

    /// RFC 7515 compact serialisation: `b64url(header).b64url(claims).b64url(signature)`,
    /// the signature made by the vault's key over the first two parts (EdDSA, RFC 8037).
    fn compact_jws(&self, header: &Header, claims: &impl Serialize) -> Result<String, TokenError> {
        let header = serde_json::to_vec(header).map_err(|_| TokenError::Sign)?;
        let claims = serde_json::to_vec(claims).map_err(|_| TokenError::Sign)?;
        let mut jws = URL_SAFE_NO_PAD.encode(header);
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(claims));
        let signature = self.signing.sign(jws.as_bytes());
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(jws)
    }

    /// The claims of a valid token: from the verified tokens if it is one of them and not
    /// expired, else verified in full (and remembered).
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let now = self.now_secs();
        if let Some(claims) = self.verified.get(token, now) {
            return Ok(claims);
        }
        let claims = self.verify_signature(token)?;
        let in_force = claims.nbf <= now.saturating_add(LEEWAY_SECS)
            && now <= claims.exp.saturating_add(LEEWAY_SECS);
        if !in_force {
            return Err(TokenError::Invalid);
        }
        self.verified.insert(token, &claims, now);
        Ok(claims)
    }

    fn verify_signature(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid);
        }
        // `kid` only selects among our own keys; a token without one or with a foreign one fails.
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.decoding.get(kid))
            .ok_or(TokenError::Invalid)?;
        jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| TokenError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::vault::keyring::KeyringFile;

    fn issuer() -> TokenIssuer {
        let vault = Vault::from_keyring(&KeyringFile::generate(["person"], 0).unwrap()).unwrap();
        TokenIssuer::new(&vault, "https://hub.test".to_owned(), 300).unwrap()
    }

    #[test]
    fn issued_token_verifies() {
        let t = issuer();
        let token = t.issue_user("u1").unwrap();
        let claims = t.verify(&token).unwrap();
        assert_eq!(claims.sub, "u1");
        assert_eq!(claims.cnf, None);
        let token = t.issue_client("c1", "thumb").unwrap();
        let claims = t.verify(&token).unwrap();
        assert_eq!(
            (claims.kind.as_str(), claims.cnf.unwrap().x5t_s256.as_str()),
            ("client", "thumb")
        );
    }

    #[test]
    fn tokens_live_by_the_hubs_clock_not_the_systems() {
        let clock = Arc::new(crate::time::ManualClock::at(1_000_000_000_000));
        let mut t = issuer().with_clock(Arc::clone(&clock) as Arc<dyn Clock>);
        let token = t.issue_client("c1", "thumb").unwrap();
        let claims = t.verify(&token).unwrap();
        // Issued at the hub's time (2001), not the system's.
        assert_eq!(claims.iat, 1_000_000_000);
        assert_eq!(claims.exp, 1_000_000_000 + 300);
        // Still valid at `exp` plus the leeway, refused a second later (also when it was
        // remembered as verified).
        clock.advance(std::time::Duration::from_secs(300 + 5));
        assert!(t.verify(&token).is_ok());
        clock.advance(std::time::Duration::from_secs(1));
        assert!(t.verify(&token).is_err());
        // A token whose `nbf` lies beyond the leeway in the hub's future is refused too.
        let future = t.issue_client("c1", "thumb").unwrap();
        t.clock = Arc::new(crate::time::ManualClock::at(
            (1_000_000_000 + 306 - 6) * 1000,
        ));
        assert!(t.verify(&future).is_err());
    }

    #[test]
    fn verified_tokens_are_remembered_until_they_expire() {
        let t = issuer();
        let token = t.issue_client("c1", "thumb").unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!(t.verified.get(&token, now).is_none());
        let first = t.verify(&token).unwrap();
        let cached = t.verified.get(&token, now).unwrap();
        assert_eq!(
            (cached.jti.as_str(), cached.exp),
            (first.jti.as_str(), first.exp)
        );
        assert_eq!(t.verify(&token).unwrap().jti, first.jti);
        // Past `exp` plus the leeway the cached claims no longer count.
        assert!(t.verified.get(&token, first.exp + LEEWAY_SECS).is_some());
        assert!(
            t.verified
                .get(&token, first.exp + LEEWAY_SECS + 1)
                .is_none()
        );
        // A token differing in one byte from a remembered one is verified afresh: refused.
        let mut forged = token.clone().into_bytes();
        let last = forged.len() - 2;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        assert!(t.verify(std::str::from_utf8(&forged).unwrap()).is_err());
        // Full: expired entries go first, then everything; the newest is always kept.
        let claims = |exp| Claims {
            exp,
            ..first.clone()
        };
        let verified = VerifiedTokens::new();
        verified.insert("expired", &claims(now - 60), now);
        for i in 1..VERIFIED_CAPACITY {
            verified.insert(&format!("t{i}"), &claims(now + 60), now);
        }
        // Full: the expired entry goes first, the others stay.
        verified.insert("next", &claims(now + 60), now);
        assert!(verified.get("t1", now).is_some());
        assert!(verified.get("next", now).is_some());
        // Full of live entries: all go, the newest stays.
        verified.insert("newest", &claims(now + 60), now);
        assert!(verified.get("t1", now).is_none());
        assert!(verified.get("next", now).is_none());
        assert!(verified.get("newest", now).is_some());
    }

    #[test]
    fn token_of_another_hub_is_refused() {
        let token = issuer().issue_user("u1").unwrap();
        assert!(issuer().verify(&token).is_err());
    }

    #[test]
    fn tampered_or_alg_none_token_is_refused() {
        let t = issuer();
        let token = t.issue_user("u1").unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let forged_payload = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&serde_json::json!({"sub": "admin"})).unwrap());
        parts[1] = forged_payload;
        assert!(t.verify(&parts.join(".")).is_err());
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = token.split('.').nth(1).unwrap();
        assert!(t.verify(&format!("{none_header}.{body}.")).is_err());
        assert!(t.verify("garbage").is_err());
    }
}
