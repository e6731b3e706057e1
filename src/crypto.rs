//! Small cryptographic helpers shared by every module: random tokens, hashes, comparisons.

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

#[cfg(test)]
mod tests {
    use super::*;

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
