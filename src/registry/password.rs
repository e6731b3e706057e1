//! User passwords: argon2id, verified off the async executor behind a bounded semaphore
//! so that a login storm cannot starve token issuance of threads.

use std::sync::{Arc, LazyLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::Semaphore;

/// At most half the cores (at least one) compute argon2 at once, each taking ~19 MiB and
/// a core for a few tens of milliseconds: a login storm queues here instead of taking
/// every core from the requests that need none.
static PERMITS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Arc::new(Semaphore::new((cores / 2).max(1)))
});

/// Verified when the user does not exist, so that timing does not reveal usernames.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| hash_blocking("lanyard-dummy-password").unwrap_or_default());

/// Minimum length of a new password.
pub const MIN_LENGTH: usize = 8;

pub fn check_strength(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_LENGTH {
        return Err(format!("must be at least {MIN_LENGTH} characters"));
    }
    if password.len() > 1024 {
        return Err("must be at most 1024 bytes".into());
    }
    Ok(())
}

/// argon2id with the crate's (OWASP) default parameters, as a PHC string.
pub fn hash_blocking(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Hashes off the executor.
pub async fn hash(password: String) -> Result<String, String> {
    let _permit = PERMITS.clone().acquire_owned().await.map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || hash_blocking(&password)).await.map_err(|e| e.to_string())?
}

/// Verifies `password` against `stored` (or against a dummy hash when there is no user).
pub async fn verify(password: String, stored: Option<String>) -> bool {
    let Ok(_permit) = PERMITS.clone().acquire_owned().await else {
        return false;
    };
    let exists = stored.is_some();
    let stored = stored.unwrap_or_else(|| DUMMY_HASH.clone());
    let ok = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored)
            .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    ok && exists
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let stored = super::hash("correct horse".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(super::verify("correct horse".into(), Some(stored.clone())).await);
        assert!(!super::verify("wrong horse".into(), Some(stored)).await);
        assert!(!super::verify("anything".into(), None).await);
    }
}

/// Checks a stored password hash given from outside (a seed file exported by `lanyard seed
/// export`): an argon2id PHC string, as Lanyard writes them.
pub fn check_hash(stored: &str) -> Result<(), String> {
    let parsed = argon2::PasswordHash::new(stored).map_err(|_| "is not a PHC password hash string".to_string())?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(format!("must be an argon2id hash, not {}", parsed.algorithm));
    }
    Ok(())
}

#[cfg(test)]
mod hash_tests {
    #[test]
    fn only_argon2id_phc_strings_are_taken_as_hashes() {
        let hash = super::hash_blocking("a long enough password").unwrap();
        assert!(super::check_hash(&hash).is_ok());
        assert!(super::check_hash("plain text").is_err());
        assert!(super::check_hash("$argon2i$v=19$m=16,t=2,p=1$c29tZXNhbHQ$aGFzaA").is_err());
    }
}
