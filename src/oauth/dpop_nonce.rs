//! Server-provided DPoP nonces (RFC 9449 §8, §9): with `dpop_nonce` on, a proof must carry
//! a `nonce` this server handed out recently, which bounds how long a proof made ahead of
//! time (on a device an attacker controlled for a while) stays usable.
//!
//! A nonce is `base64url(period ‖ HMAC-SHA256(key, "lanyard dpop nonce" ‖ period)[..16])`
//! for the current five-minute period of the protocol clock. Every replica holds the same
//! key (generated once into `server_secrets`, sealed under the key-encryption key when one
//! is set), so any of them verifies a nonce another one issued, without storing it; nonces
//! rotate with the period, and one of the previous period is still accepted so that a
//! nonce handed out just before a rotation does not fail at once.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;

use crate::store::{Store, StoreError};

/// The `server_secrets` name of the nonce key.
const SECRET_NAME: &str = "dpop_nonce_key";
/// Seconds a nonce period lasts: a nonce is accepted for 5 to 10 minutes.
pub const NONCE_PERIOD: i64 = 300;
/// Bytes of MAC kept in a nonce (128 bits: unforgeable without the key).
const MAC_BYTES: usize = 16;

/// The key that makes and checks nonces; the same on every replica.
pub struct NonceKey {
    key: Vec<u8>,
}

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceKey([REDACTED])")
    }
}

impl NonceKey {
    /// Reads the key, generating it (256 random bits) on first use; replicas racing to
    /// create it converge on one (see [`Store::server_secret_or_insert`]).
    pub async fn load(store: &Store) -> Result<Self, StoreError> {
        let kek = store.key_encryption_key();
        let corrupt = |why: &str| StoreError::Corrupt(format!("the DPoP nonce key {why}"));
        let mut key = [0u8; 32];
        openssl::rand::rand_bytes(&mut key).map_err(|_| corrupt("cannot be generated"))?;
        let candidate = match kek {
            Some(kek) => crate::crypto::seal(kek, SECRET_NAME, &key)?,
            None => URL_SAFE_NO_PAD.encode(key),
        };
        let stored = store.server_secret_or_insert(SECRET_NAME, &candidate).await?;
        let key = match crate::crypto::open(kek, SECRET_NAME, &stored) {
            Some(Ok(bytes)) => bytes,
            Some(Err(e)) => return Err(corrupt(&e.to_string())),
            None => URL_SAFE_NO_PAD.decode(&stored).map_err(|_| corrupt("is not base64url"))?,
        };
        if key.len() < 16 {
            return Err(corrupt("is too short"));
        }
        Ok(Self { key })
    }

    /// A key of the given bytes (unit tests).
    #[cfg(test)]
    fn from_bytes(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    /// The nonce to hand out at `now` (protocol clock).
    pub fn current(&self, now: i64) -> String {
        self.for_period(now.div_euclid(NONCE_PERIOD))
    }

    /// Whether `nonce` was made by this key in the current period or the one before.
    pub fn accepts(&self, nonce: &str, now: i64) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(nonce) else { return false };
        let Some(period) = bytes.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(i64::from_be_bytes) else {
            return false;
        };
        let current = now.div_euclid(NONCE_PERIOD);
        if period != current && period != current - 1 {
            return false;
        }
        crate::crypto::constant_time_eq(self.for_period(period).as_bytes(), nonce.as_bytes())
    }

    fn for_period(&self, period: i64) -> String {
        let mut blob = period.to_be_bytes().to_vec();
        blob.extend_from_slice(&self.mac(period));
        URL_SAFE_NO_PAD.encode(blob)
    }

    fn mac(&self, period: i64) -> Vec<u8> {
        // HMAC never fails on a valid key; an empty MAC (which matches nothing) if it did.
        let compute = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
            let key = PKey::hmac(&self.key)?;
            let mut signer = Signer::new(MessageDigest::sha256(), &key)?;
            signer.update(b"lanyard dpop nonce")?;
            signer.update(&period.to_be_bytes())?;
            signer.sign_to_vec()
        };
        let mut mac = compute().unwrap_or_default();
        mac.truncate(MAC_BYTES);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_accepted_in_its_period_and_the_next_then_refused() {
        let key = NonceKey::from_bytes(&[3u8; 32]);
        let now = 1_000_000 * NONCE_PERIOD + 10;
        let nonce = key.current(now);
        assert_eq!(nonce, key.current(now + 100), "stable within a period");
        assert!(key.accepts(&nonce, now));
        assert!(key.accepts(&nonce, now + NONCE_PERIOD), "the next period still accepts it");
        assert!(!key.accepts(&nonce, now + 2 * NONCE_PERIOD), "rotated out");
        assert!(!key.accepts(&nonce, now - NONCE_PERIOD), "not before it was made");
        assert_ne!(nonce, key.current(now + NONCE_PERIOD), "rotates");
        let other = NonceKey::from_bytes(&[4u8; 32]);
        assert!(!other.accepts(&nonce, now), "another key's nonce");
        for garbage in ["", "x", "AAAAAAAAAAA", &nonce[..nonce.len() - 1]] {
            assert!(!key.accepts(garbage, now), "{garbage:?}");
        }
    }
}
