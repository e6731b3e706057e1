//! Small cryptographic helpers shared by every module: random tokens, hashes, comparisons,
//! and sealing under the key-encryption key (signing keys, client_secret_jwt secrets).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A random token of `bytes` bytes, base64url without padding (32 bytes = 256 bits).
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Lower-case hex SHA-256: how secrets, codes, sessions and refresh tokens are stored.
pub fn sha256_hex(input: &str) -> String {
    openssl::sha::sha256(input.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// base64url(SHA-256(input)): PKCE S256 and half-hashes for `at_hash`.
pub fn sha256_b64(input: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(openssl::sha::sha256(input))
}

/// Compares secrets without leaking where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

/// The prefix of a sealed value (the format's version).
pub const SEALED_PREFIX: &str = "v1:";

/// Why a sealed value could not be made or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("sealed, but no key-encryption key is configured (set LANYARD_KEY_ENCRYPTION_KEY)")]
    NoKey,
    #[error("cannot be decrypted: wrong LANYARD_KEY_ENCRYPTION_KEY, or the value was altered or moved")]
    Decrypt,
    #[error("sealing failed: {0}")]
    Crypto(String),
}

/// Encrypts `plaintext` with AES-256-GCM under `kek`, binding `aad` (what the value
/// belongs to: a kid, a client_id), so that a sealed value copied onto another row does
/// not open. `v1:` + base64url(nonce | ciphertext | tag), a fresh 96-bit nonce each time.
pub fn seal(kek: &[u8; 32], aad: &str, plaintext: &[u8]) -> Result<String, SealError> {
    let crypto = |e: openssl::error::ErrorStack| SealError::Crypto(e.to_string());
    let mut nonce = [0u8; 12];
    openssl::rand::rand_bytes(&mut nonce).map_err(crypto)?;
    let mut tag = [0u8; 16];
    let cipher = openssl::symm::Cipher::aes_256_gcm();
    let ciphertext =
        openssl::symm::encrypt_aead(cipher, kek, Some(&nonce), aad.as_bytes(), plaintext, &mut tag).map_err(crypto)?;
    let mut blob = nonce.to_vec();
    blob.extend_from_slice(&ciphertext);
    blob.extend_from_slice(&tag);
    Ok(format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(blob)))
}

/// Decrypts what [`seal`] made with the same key and `aad`; `None` when `stored` is not
/// sealed (no `v1:` prefix), for the caller's own rule on values kept in the clear.
pub fn open(kek: Option<&[u8; 32]>, aad: &str, stored: &str) -> Option<Result<Vec<u8>, SealError>> {
    let encoded = stored.strip_prefix(SEALED_PREFIX)?;
    let Some(kek) = kek else { return Some(Err(SealError::NoKey)) };
    let Some(blob) = URL_SAFE_NO_PAD.decode(encoded).ok().filter(|b| b.len() >= 12 + 16) else {
        return Some(Err(SealError::Decrypt));
    };
    let (nonce, rest) = blob.split_at(12);
    let (ciphertext, tag) = rest.split_at(rest.len() - 16);
    let cipher = openssl::symm::Cipher::aes_256_gcm();
    Some(
        openssl::symm::decrypt_aead(cipher, kek, Some(nonce), aad.as_bytes(), ciphertext, tag)
            .map_err(|_| SealError::Decrypt),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_associated_data() {
        let kek = [7u8; 32];
        let sealed = seal(&kek, "kid-1", b"secret").unwrap();
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert_ne!(sealed, seal(&kek, "kid-1", b"secret").unwrap(), "a fresh nonce each time");
        assert_eq!(open(Some(&kek), "kid-1", &sealed), Some(Ok(b"secret".to_vec())));
        assert_eq!(open(Some(&[8u8; 32]), "kid-1", &sealed), Some(Err(SealError::Decrypt)), "wrong key");
        assert_eq!(open(Some(&kek), "kid-2", &sealed), Some(Err(SealError::Decrypt)), "aad is bound");
        assert_eq!(open(None, "kid-1", &sealed), Some(Err(SealError::NoKey)));
        assert_eq!(open(Some(&kek), "kid-1", "v1:AAAA"), Some(Err(SealError::Decrypt)), "truncated");
        assert_eq!(open(Some(&kek), "kid-1", "{\"kty\":\"RSA\"}"), None, "not sealed");
    }

    #[test]
    fn random_tokens_are_256_bit_and_distinct() {
        let a = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token(32));
    }

    #[test]
    fn sha256_hex_matches_known_vector() {
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
