//! Subject identifiers (OIDC Core §8): the `sub` a client sees for a user. A `public`
//! client sees the user's own id; a `pairwise` one sees
//! `base64url(SHA-256(sector ‖ 0x00 ‖ user id ‖ salt))` (§8.1's construction, with a
//! separator so that no two (sector, id) pairs concatenate alike), where the sector is
//! [`Client::sector_identifier`] and the salt a server secret. The same user thus has one
//! stable `sub` per sector, and clients of different sectors cannot correlate their users
//! through it; only the server, holding the salt, can tell two of them apart or alike.
//!
//! The salt is generated once and kept in the database (every replica computes the same
//! subs, and a restart changes none; encrypted when a key-encryption key is configured),
//! read once at start-up and held in memory: it never changes (changing it would change
//! every pairwise sub).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::registry::client::{Client, SubjectType};
use crate::store::{Store, StoreError};

/// The `server_secrets` name of the pairwise salt.
const SALT_NAME: &str = "pairwise_salt";

/// Computes the `sub` each client sees. Cheap to call: one SHA-256 for a pairwise client.
#[derive(Clone)]
pub struct Subjects {
    salt: Vec<u8>,
}

impl fmt::Debug for Subjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The salt is a secret: never in a log line.
        f.write_str("Subjects { salt: [REDACTED] }")
    }
}

/// Why the salt could not be loaded: the server cannot start without it.
#[derive(Debug, thiserror::Error)]
pub enum SubjectsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the pairwise salt is encrypted but no key-encryption key is configured (set LANYARD_KEY_ENCRYPTION_KEY)")]
    NoKeyEncryptionKey,
    #[error("the pairwise salt cannot be read: wrong LANYARD_KEY_ENCRYPTION_KEY, or corrupt")]
    Unreadable,
}

impl Subjects {
    /// Reads the salt, generating it (256 random bits) on the first start, encrypted with
    /// the key-encryption key when one is configured (as the private signing keys are).
    /// Concurrent first starts converge on one salt (see [`Store::server_secret_or_insert`]).
    pub async fn load(store: &Store, kek: Option<&[u8; 32]>) -> Result<Self, SubjectsError> {
        let mut salt = [0u8; 32];
        openssl::rand::rand_bytes(&mut salt).map_err(|_| SubjectsError::Unreadable)?;
        let candidate = match kek {
            Some(kek) => crate::crypto::seal(kek, SALT_NAME, &salt).map_err(|_| SubjectsError::Unreadable)?,
            None => URL_SAFE_NO_PAD.encode(salt),
        };
        let stored = store.server_secret_or_insert(SALT_NAME, &candidate).await?;
        // Sealed: the salt's bytes; in the clear: their base64url text.
        let salt = match crate::crypto::open(kek, SALT_NAME, &stored) {
            Some(Ok(bytes)) => bytes,
            Some(Err(crate::crypto::SealError::NoKey)) => return Err(SubjectsError::NoKeyEncryptionKey),
            Some(Err(_)) => return Err(SubjectsError::Unreadable),
            None => URL_SAFE_NO_PAD.decode(&stored).map_err(|_| SubjectsError::Unreadable)?,
        };
        if salt.len() < 16 {
            return Err(SubjectsError::Unreadable);
        }
        Ok(Self { salt })
    }

    /// The `sub` that `client` sees for the user `user_id`. Wherever a client learns who
    /// the user is (id_token, userinfo, logout token, introspection, access token), this is
    /// the `sub` it gets; wherever a client names a user back (`id_token_hint`), its `sub`
    /// is compared with this.
    pub fn for_client(&self, client: &Client, user_id: &str) -> String {
        match client.subject_type {
            SubjectType::Public => user_id.to_owned(),
            SubjectType::Pairwise => self.pairwise(&client.sector_identifier(), user_id),
        }
    }

    /// OIDC Core §8.1 for one sector.
    fn pairwise(&self, sector: &str, user_id: &str) -> String {
        let mut hasher = openssl::sha::Sha256::new();
        hasher.update(sector.as_bytes());
        hasher.update(&[0]);
        hasher.update(user_id.as_bytes());
        hasher.update(&self.salt);
        URL_SAFE_NO_PAD.encode(hasher.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subjects(salt: &[u8]) -> Subjects {
        Subjects { salt: salt.to_vec() }
    }

    #[test]
    fn pairwise_subs_depend_on_sector_user_and_salt_and_nothing_else() {
        let s = subjects(b"0123456789abcdef0123456789abcdef");
        let a = s.pairwise("rp.example", "u1");
        assert_eq!(a, s.pairwise("rp.example", "u1"), "stable");
        assert_eq!(a.len(), 43, "base64url of 32 bytes, unpadded");
        assert_ne!(a, s.pairwise("other.example", "u1"), "per sector");
        assert_ne!(a, s.pairwise("rp.example", "u2"), "per user");
        assert_ne!(a, subjects(b"another salt, another server!!!!").pairwise("rp.example", "u1"), "per salt");
        // The separator keeps (sector, id) pairs apart that would concatenate alike.
        assert_ne!(s.pairwise("rp.example1", "23"), s.pairwise("rp.example", "123"));
    }

    #[test]
    fn a_sealed_salt_opens_only_with_its_key_encryption_key() {
        let kek = [7u8; 32];
        let sealed = crate::crypto::seal(&kek, SALT_NAME, b"0123456789abcdef").unwrap();
        assert!(sealed.starts_with("v1:") && !sealed.contains("0123456789abcdef"));
        assert_eq!(crate::crypto::open(Some(&kek), SALT_NAME, &sealed).unwrap().unwrap(), b"0123456789abcdef");
        assert!(crate::crypto::open(Some(&[8u8; 32]), SALT_NAME, &sealed).unwrap().is_err());
        assert!(crate::crypto::open(None, SALT_NAME, &sealed).unwrap().is_err());
    }

    #[test]
    fn the_salt_never_shows_in_debug_output() {
        assert!(!format!("{:?}", subjects(b"visible-salt-visible-salt")).contains("visible"));
    }
}
