//! Standard Webhooks signing (standardwebhooks.com, spec/standard-webhooks.md): the secret is
//! `whsec_` + base64 of its bytes; a message is signed as
//! `v1,` + base64(HMAC-SHA256(secret bytes, "{webhook-id}.{webhook-timestamp}.{body}")).
//! Invariant: a `WebhookSecret` holds 24–64 secret bytes (the spec's bounds); `parse` and
//! `generate` are its only constructors.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

/// The prefix of a secret's text form.
pub const SECRET_PREFIX: &str = "whsec_";
/// Secret bytes the hub generates.
const SECRET_LEN: usize = 32;

/// A webhook signing secret.
pub struct WebhookSecret(Zeroizing<Vec<u8>>);

impl WebhookSecret {
    /// A fresh random secret.
    pub fn generate() -> Result<WebhookSecret, crate::vault::random::RandomError> {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_LEN]);
        crate::vault::random::fill(&mut bytes)?;
        Ok(WebhookSecret(bytes))
    }

    /// Secret bytes as stored (unsealed).
    pub fn from_bytes(bytes: &[u8]) -> Option<WebhookSecret> {
        (24..=64)
            .contains(&bytes.len())
            .then(|| WebhookSecret(Zeroizing::new(bytes.to_vec())))
    }

    /// `whsec_<base64>`.
    pub fn parse(text: &str) -> Option<WebhookSecret> {
        let b64 = text.strip_prefix(SECRET_PREFIX)?;
        let bytes = Zeroizing::new(STANDARD.decode(b64).ok()?);
        WebhookSecret::from_bytes(&bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The text form shown once to the admin: `whsec_<base64>`.
    pub fn text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{SECRET_PREFIX}{}", STANDARD.encode(&*self.0)))
    }

    /// The `webhook-signature` header value of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.0);
        let mut ctx = ring::hmac::Context::with_key(&key);
        ctx.update(id.as_bytes());
        ctx.update(b".");
        ctx.update(timestamp.to_string().as_bytes());
        ctx.update(b".");
        ctx.update(body.as_bytes());
        format!("v1,{}", STANDARD.encode(ctx.sign().as_ref()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The example of the Standard Webhooks reference libraries (their `webhook_test` vectors).
    #[test]
    fn signature_matches_the_reference_vector() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = secret.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_generated_secret_reads_back_from_its_text() {
        let secret = WebhookSecret::generate().unwrap();
        let again = WebhookSecret::parse(&secret.text()).unwrap();
        assert_eq!(secret.bytes(), again.bytes());
        assert!(
            WebhookSecret::parse("whsec_c2hvcnQ=").is_none(),
            "too short"
        );
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_none());
    }
}
