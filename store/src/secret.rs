//! Secrets: generated with the OS RNG, shown once, kept only as hashes.
//!
//! Device passwords use Argon2id (a slow hash) because MQTT passwords are the credential an attacker with a copy
//! of the data directory would most like to brute-force. API tokens carry 240 random bits, so a fast SHA-256 is
//! enough to make a stolen hash useless, and it lets a request's token be looked up by its hash in O(1).
use crate::{Error, Result};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

/// A new random secret of `len` alphanumeric characters (~5.95 bits each).
pub(crate) fn generate(len: usize) -> String {
    Alphanumeric.sample_string(&mut OsRng, len)
}

pub(crate) fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Hash {
            detail: e.to_string(),
        })
}

/// Whether `password` matches the Argon2id hash `phc`. Slow (Argon2id, ~19 MiB): callers bound how many run.
pub fn verify_password(password: &str, phc: &str) -> Result<bool> {
    let parsed = PasswordHash::new(phc).map_err(|e| Error::Hash {
        detail: e.to_string(),
    })?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// The hash of a random password nobody knows, with the same parameters as real ones: verifying a login
/// for an unknown id against it costs what a real check costs, so timing does not tell which ids exist.
pub fn decoy_password_hash() -> Result<String> {
    hash_password(&generate(32))
}

pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hash_verifies_only_the_password() {
        let pw = generate(32);
        let h = hash_password(&pw).expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.contains(&pw));
        assert!(verify_password(&pw, &h).expect("verify"));
        assert!(!verify_password("wrong", &h).expect("verify"));
    }
}
