//! PKCE (RFC 7636), `S256` only.

use crate::crypto::{constant_time_eq, sha256_b64};

/// A `code_challenge` sent with `code_challenge_method=S256`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// Parses a challenge and its method; `plain` is refused (RFC 9700 §2.1.1).
    pub fn parse(challenge: &str, method: Option<&str>) -> Result<Self, String> {
        match method.unwrap_or("plain") {
            "S256" => {}
            "plain" => {
                return Err("code_challenge_method must be S256 (plain is not supported)".into());
            }
            other => {
                return Err(format!("unsupported code_challenge_method {other:?}: use S256"));
            }
        }
        // base64url of a SHA-256: exactly 43 characters.
        if challenge.len() != 43 || !challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err("code_challenge must be the base64url SHA-256 of the verifier (43 characters)".into());
        }
        Ok(Self(challenge.to_owned()))
    }

    /// Restores a challenge read back from storage (validated when it was stored).
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `verifier` (43–128 unreserved characters, RFC 7636 §4.1) hashes to this challenge.
    pub fn verify(&self, verifier: &str) -> bool {
        let well_formed = (43..=128).contains(&verifier.len())
            && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        well_formed && constant_time_eq(sha256_b64(verifier.as_bytes()).as_bytes(), self.0.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::CodeChallenge;

    #[test]
    fn rfc7636_appendix_b_vector() {
        let challenge = CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", Some("S256")).unwrap();
        assert!(challenge.verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        assert!(!challenge.verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl"));
    }

    #[test]
    fn plain_and_malformed_challenges_are_refused() {
        assert!(CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", None).is_err());
        assert!(CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", Some("plain")).is_err());
        assert!(CodeChallenge::parse("short", Some("S256")).is_err());
    }
}
