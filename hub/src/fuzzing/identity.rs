//! Who a caller is: access tokens (JWTs) and the certificate requests and certificates of
//! department clients.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::{split_choice, text, vault};
use crate::auth::tokens::{AUDIENCE, TokenIssuer};
use crate::tls::pki::{self, inspect_client_certificate, issue_client_certificate};
use crate::vault::client_ca::ClientCa;

const ISSUER: &str = "https://fuzz.gridhub.example";

fn tokens() -> &'static TokenIssuer {
    static TOKENS: OnceLock<TokenIssuer> = OnceLock::new();
    TOKENS.get_or_init(|| TokenIssuer::new(vault(), ISSUER.to_owned(), 900).expect("issuer"))
}

/// Access tokens, the first byte picking how:
/// 0. the input is the bearer token (`TokenIssuer::verify`);
/// 1. the input is a JWS header and claims (JSON, on two lines; `@kid` in the header stands
///    for the key's id), signed with the hub's own key, so the checks after the signature run
///    too: a token accepted must name this hub as
///    issuer and audience, be signed EdDSA with a `kid` of ours, and be valid now.
pub fn jwt(data: &[u8]) {
    let Some((choice, rest)) = split_choice(data, 2) else {
        return;
    };
    if choice == 0 {
        if let Some(token) = text(rest) {
            let _ = tokens().verify(token);
        }
        return;
    }
    let Some(at) = rest.iter().position(|b| *b == b'\n') else {
        return;
    };
    let key = vault().current_signing_key().expect("a signing key");
    // The key id is random per process: `@kid` in the header stands for it.
    let header = match std::str::from_utf8(&rest[..at]) {
        Ok(h) => h.replace("@kid", &key.kid).into_bytes(),
        Err(_) => rest[..at].to_vec(),
    };
    let (header, claims) = (header.as_slice(), &rest[at + 1..]);
    let mut token = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = key.key.sign(token.as_bytes());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    let Ok(accepted) = tokens().verify(&token) else {
        return;
    };
    let header = lenient_json(header);
    assert_eq!(header["alg"], "EdDSA", "only EdDSA tokens are accepted");
    assert_eq!(
        header["kid"],
        key.kid.as_str(),
        "only our key ids are accepted"
    );
    assert_eq!(accepted.iss, ISSUER);
    assert_eq!(accepted.aud, AUDIENCE);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // Leeway is 5 s; the margin covers a slow run between signing and this check.
    assert!(accepted.exp >= now - 65, "an expired token is refused");
    assert!(accepted.nbf <= now + 65, "a token not yet valid is refused");
    let claims = lenient_json(claims);
    for claim in ["exp", "nbf"] {
        assert!(
            claims[claim].is_i64() || claims[claim].is_u64(),
            "{claim} is a number"
        );
    }
}

/// JSON that serde read into a struct. Its bytes need not be UTF-8: serde_json skips the values
/// of fields a struct does not have (here an unknown claim or header) without checking them,
/// so read it as the struct's reader did, invalid bytes replaced.
fn lenient_json(bytes: &[u8]) -> Value {
    serde_json::from_str(&String::from_utf8_lossy(bytes)).expect("accepted JSON")
}

/// The hub CA of a development PKI, made once per fuzzing process in a temporary directory.
fn client_ca() -> &'static ClientCa {
    static CA: OnceLock<ClientCa> = OnceLock::new();
    CA.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("gridhub-fuzz-pki-{}", std::process::id()));
        pki::create_dev_pki(&dir, "fuzz", &[]).expect("development PKI");
        let ca = ClientCa::load(&dir).expect("CA loads").expect("a CA key");
        let _ = std::fs::remove_dir_all(&dir);
        ca
    })
}

/// Client registration, the first byte picking how:
/// 0. the input is a CSR PEM, issued by the hub CA (`issue_client_certificate`, as
///    `POST /v1/admin/clients` does); what is issued passes the external-certificate check;
/// 1. the input is a certificate PEM from an external CA (`inspect_client_certificate`).
pub fn csr(data: &[u8]) {
    let Some((choice, rest)) = split_choice(data, 2) else {
        return;
    };
    let Some(pem) = text(rest) else {
        return;
    };
    if choice == 0 {
        if let Ok(issued) = issue_client_certificate(Some(client_ca()), pem, "fuzz-client", 30) {
            let inspected = inspect_client_certificate(&issued.pem).expect("an issued cert");
            assert_eq!(inspected.thumbprint, issued.thumbprint);
        }
    } else {
        let _ = inspect_client_certificate(pem);
    }
}
