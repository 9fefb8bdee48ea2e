//! Password hashing with argon2id (PHC strings). Verification of an unknown user still costs
//! one full hash, so response time does not reveal which usernames exist.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be between 12 and 256 characters")]
    Weak,
    #[error("cannot hash password")]
    Hash,
}

fn hasher() -> Argon2<'static> {
    // OWASP 2024 minimum for argon2id: m = 19 MiB, t = 2, p = 1.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Check the policy and hash. Blocking (tens of milliseconds): call from `spawn_blocking`.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let chars = password.chars().count();
    if !(12..=256).contains(&chars) {
        return Err(PasswordError::Weak);
    }
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Hash)
}

/// A fixed hash of a random password, verified against when the user does not exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$T0Y1bTbD3fC6TJrZ3OBRr5Ar8QRCLoy7K9K52SXm4Xo";

/// True iff `password` matches `phc`. With `phc = None` (unknown user) it does the same work
/// and returns false. Blocking: call from `spawn_blocking`.
pub fn verify(password: &str, phc: Option<&str>) -> bool {
    let target = phc.unwrap_or(DUMMY_HASH);
    let Ok(parsed) = PasswordHash::new(target) else {
        return false;
    };
    let ok = hasher()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    ok && phc.is_some()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hash_is_argon2id_and_verifies() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", Some(&h)));
        assert!(!verify("correct horse batterz", Some(&h)));
    }

    #[test]
    fn unknown_user_never_verifies() {
        assert!(!verify("anything at all", None));
    }

    #[test]
    fn short_password_is_refused() {
        assert!(matches!(hash("short"), Err(PasswordError::Weak)));
    }
}
