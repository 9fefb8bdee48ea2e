//! Forged and malformed tokens for the JWT attack suite. `HubKey` reads the hub's current
//! token-signing key from the test's own data directory (the tests own the keyring), so tokens
//! can be validly signed yet carry wrong claims; everything else is built by hand.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use gridhub::vault::keyring::{AgeFileStore, KeyringStore};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::TestApp;

pub struct HubKey {
    pub kid: String,
    pkcs8: Vec<u8>,
    /// Raw Ed25519 public key (32 bytes) as published in the JWKS.
    pub public_key: Vec<u8>,
}

impl HubKey {
    pub fn of(app: &TestApp) -> HubKey {
        let ring = AgeFileStore::in_dir(app.data_dir.path()).load().unwrap();
        let key = ring.signing_keys.last().unwrap();
        let pkcs8 = STANDARD.decode(&key.pkcs8).unwrap();
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap();
        let public_key = ring::signature::KeyPair::public_key(&pair)
            .as_ref()
            .to_vec();
        HubKey {
            kid: key.kid.clone(),
            pkcs8,
            public_key,
        }
    }

    /// Sign `claims` with the hub's key under `header` (EdDSA).
    pub fn sign(&self, mut header: Header, claims: &Value) -> String {
        header.alg = Algorithm::EdDSA;
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&self.pkcs8)).unwrap()
    }

    pub fn header(&self) -> Header {
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some(self.kid.clone());
        h
    }
}

/// The claims the hub itself would issue at `now` (Unix seconds, by the hub's clock: tokens
/// live by it) to client `sub` bound to `thumbprint`.
pub fn client_claims(sub: &str, thumbprint: &str, now: i64) -> Value {
    json!({
        "iss": "gridhub/gridhub-test", "sub": sub, "aud": "gridhub",
        "exp": now + 300, "nbf": now, "iat": now, "jti": uuid::Uuid::new_v4().to_string(),
        "kind": "client", "cnf": {"x5t#S256": thumbprint},
    })
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// `alg: none`, no signature.
pub fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(claims)
    )
}

/// HS256 with the hub's public key as the HMAC secret (algorithm confusion).
pub fn hs256_with_public_key(key: &HubKey, claims: &Value) -> String {
    let signing_input = format!(
        "{}.{}",
        b64(&json!({"alg": "HS256", "typ": "JWT", "kid": key.kid})),
        b64(claims)
    );
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key.public_key),
        signing_input.as_bytes(),
    );
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()))
}

/// Signed with an attacker's own Ed25519 key, announcing it through `jku` and `jwk` headers.
pub fn attacker_signed_with_key_headers(claims: &Value) -> Vec<String> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let x = URL_SAFE_NO_PAD.encode(ring::signature::KeyPair::public_key(&pair).as_ref());
    let sign = |header: Value| {
        let input = format!("{}.{}", b64(&header), b64(claims));
        let sig = pair.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    };
    vec![
        sign(
            json!({"alg": "EdDSA", "kid": "attacker", "jku": "https://attacker.example/jwks.json"}),
        ),
        sign(json!({"alg": "EdDSA", "kid": "attacker",
            "jwk": {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "attacker"}})),
        sign(json!({"alg": "EdDSA", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": x}})),
    ]
}

/// Replace the payload of a valid token (signature no longer matches).
pub fn with_payload(token: &str, claims: &Value) -> String {
    let mut parts = token.split('.');
    let (h, _, s) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    format!("{h}.{}.{s}", b64(claims))
}
