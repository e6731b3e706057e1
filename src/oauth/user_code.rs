//! The device flow's user code (RFC 8628 §6.1): short enough to type on a phone from a TV
//! screen, from an alphabet without vowels (no words) and without look-alikes (no 0/O,
//! 1/I/L confusion), shown as `XXXX-XXXX`, and read back however the user typed it.

use crate::crypto::sha256_hex;

/// Twenty consonants: no vowels, nothing that reads as a digit (RFC 8628 §6.1's example).
const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// 20^8 ≈ 2^34.6 codes: with attempts throttled and a 10-minute lifetime, guessing a live
/// one is out of reach (RFC 8628 §5.1).
const LENGTH: usize = 8;

/// A well-formed user code, normalized (upper case, no separators). Only [`UserCode::parse`]
/// and [`UserCode::generate`] make one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCode(String);

impl UserCode {
    /// A new random code, every letter drawn uniformly from the alphabet.
    pub fn generate() -> Self {
        use rand::Rng;
        let mut rng = rand::rng();
        Self((0..LENGTH).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect())
    }

    /// The code a user typed: case does not matter, and dashes and spaces are ignored
    /// (RFC 8628 §6.1). `None` when what remains cannot be a code of ours.
    pub fn parse(typed: &str) -> Option<Self> {
        let normalized: String =
            typed.chars().filter(|c| *c != '-' && !c.is_whitespace()).map(|c| c.to_ascii_uppercase()).collect();
        let valid = normalized.len() == LENGTH && normalized.bytes().all(|b| ALPHABET.contains(&b));
        valid.then_some(Self(normalized))
    }

    /// As shown to the user: `XXXX-XXXX`.
    pub fn display(&self) -> String {
        let (head, tail) = self.0.split_at(LENGTH / 2);
        format!("{head}-{tail}")
    }

    /// How the code is stored and looked up (never in the clear).
    pub fn hash(&self) -> String {
        sha256_hex(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::UserCode;

    #[test]
    fn a_generated_code_is_shown_as_two_groups_and_reads_back_as_itself() {
        for _ in 0..100 {
            let code = UserCode::generate();
            let shown = code.display();
            assert_eq!(shown.len(), 9, "{shown}");
            assert_eq!(&shown[4..5], "-");
            assert_eq!(UserCode::parse(&shown), Some(code));
        }
    }

    #[test]
    fn typing_is_forgiven_case_dashes_and_spaces() {
        let code = UserCode::parse("WDJB-MJHT").expect("a valid code");
        for typed in ["wdjb-mjht", "WDJBMJHT", " wdjb mjht ", "Wd-Jb-Mj-Ht", "wdjb\tmjht"] {
            assert_eq!(UserCode::parse(typed).as_ref(), Some(&code), "{typed:?}");
            assert_eq!(UserCode::parse(typed).map(|c| c.hash()), Some(code.hash()), "{typed:?}");
        }
    }

    #[test]
    fn what_cannot_be_a_code_is_refused() {
        for typed in ["", "WDJB-MJH", "WDJB-MJHTX", "WDJB-MJH0", "AEIO-UWDJ", "WDJB_MJHT", "WDJB-MJHT%"] {
            assert_eq!(UserCode::parse(typed), None, "{typed:?}");
        }
    }
}
