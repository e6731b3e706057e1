//! The secret of a `client_secret_jwt` client, kept so that the server can key an HMAC with
//! it (RFC 7523 §2.2, OIDC Core §9): the SHA-256 every confidential client has cannot be
//! turned back into the key. Sealed under the key-encryption key as the signing keys are
//! (AES-256-GCM, `crypto::seal`), with the client_id as associated data, so that a sealed
//! secret copied onto another client's row does not open. Without a key-encryption key it
//! is kept in the clear, as the signing keys then are, and the server warns at start.

use std::fmt;

use crate::crypto::{SealError, open, seal};

/// What the `secret_sealed` column holds. Its `Debug` shows nothing: without a
/// key-encryption key the value is the secret itself.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret(String);

/// How a secret kept without a key-encryption key is marked (a secret may itself begin
/// with `v1:`, the sealed form's prefix).
const CLEAR_PREFIX: &str = "plain:";

impl SealedSecret {
    /// Seals `secret` for `client_id` under `kek`; with no `kek`, marks it as kept in the clear.
    pub fn seal(kek: Option<&[u8; 32]>, client_id: &str, secret: &str) -> Result<Self, SealError> {
        match kek {
            Some(kek) => Ok(Self(seal(kek, client_id, secret.as_bytes())?)),
            None => Ok(Self(format!("{CLEAR_PREFIX}{secret}"))),
        }
    }

    /// The secret's octets, the HMAC key (OIDC Core §10.1: the UTF-8 of the client_secret).
    /// Fails under another key-encryption key, without one, or for another client.
    pub fn open(&self, kek: Option<&[u8; 32]>, client_id: &str) -> Result<Vec<u8>, SealError> {
        if let Some(clear) = self.0.strip_prefix(CLEAR_PREFIX) {
            return Ok(clear.as_bytes().to_vec());
        }
        open(kek, client_id, &self.0).unwrap_or(Err(SealError::Decrypt))
    }

    /// A value read from the store.
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    /// The value to store.
    pub fn as_stored(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedSecret([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_for_its_client_under_its_key_only() {
        let kek = [3u8; 32];
        let sealed = SealedSecret::seal(Some(&kek), "c1", "s3cret").unwrap();
        assert!(!sealed.as_stored().contains("s3cret"));
        assert_eq!(sealed.open(Some(&kek), "c1").unwrap(), b"s3cret");
        assert_eq!(sealed.open(Some(&[4u8; 32]), "c1"), Err(SealError::Decrypt));
        assert_eq!(sealed.open(Some(&kek), "c2"), Err(SealError::Decrypt));
        assert_eq!(sealed.open(None, "c1"), Err(SealError::NoKey));
        assert_eq!(format!("{sealed:?}"), "SealedSecret([REDACTED])");
    }

    #[test]
    fn without_a_key_the_secret_is_kept_marked_and_unambiguous() {
        let clear = SealedSecret::seal(None, "c1", "v1:looks-sealed").unwrap();
        assert_eq!(clear.as_stored(), "plain:v1:looks-sealed");
        assert_eq!(clear.open(None, "c1").unwrap(), b"v1:looks-sealed");
        assert_eq!(clear.open(Some(&[1u8; 32]), "c1").unwrap(), b"v1:looks-sealed", "a KEK set later still reads it");
        assert_eq!(SealedSecret::from_stored("garbage".into()).open(None, "c1"), Err(SealError::Decrypt));
        assert!(!format!("{clear:?}").contains("looks-sealed"));
    }
}
