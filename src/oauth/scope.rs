//! Scopes (RFC 6749 §3.3) and the OIDC scopes with the claims each one releases.

use std::collections::BTreeSet;
use std::fmt;

/// Standard claims (OIDC Core §5.1) Lanyard can hold for a user.
pub const STANDARD_CLAIMS: [&str; 19] = [
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "updated_at",
    "email",
    "email_verified",
    "address",
    "phone_number",
    "phone_number_verified",
];

/// The scopes OpenID Connect defines, with their description for the consent page.
pub const OIDC_SCOPES: [(&str, &str); 6] = [
    ("openid", "Sign you in"),
    ("profile", "Your name and profile details"),
    ("email", "Your email address"),
    ("address", "Your postal address"),
    ("phone", "Your phone number"),
    ("offline_access", "Stay signed in (keep access while you are away)"),
];

/// The claims a scope releases (OIDC Core §5.4).
pub fn claims_for_scope(scope: &str) -> &'static [&'static str] {
    match scope {
        "profile" => &[
            "name",
            "given_name",
            "family_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        ],
        "email" => &["email", "email_verified"],
        "address" => &["address"],
        "phone" => &["phone_number", "phone_number_verified"],
        _ => &[],
    }
}

pub fn is_oidc_scope(scope: &str) -> bool {
    OIDC_SCOPES.iter().any(|(name, _)| *name == scope)
}

/// A set of scope tokens, each `1*( %x21 / %x23-5B / %x5D-7E )`; shown space-separated.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ScopeSet(BTreeSet<String>);

impl ScopeSet {
    /// Parses a space-separated list (empty allowed).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        for token in raw.split(' ').filter(|t| !t.is_empty()) {
            if !token.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)) {
                return Err(format!("{token:?} is not a valid scope"));
            }
            set.insert(token.to_owned());
        }
        Ok(Self(set))
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The scopes of `self` that `keep` accepts.
    pub fn filter(&self, keep: impl Fn(&str) -> bool) -> ScopeSet {
        Self(self.0.iter().filter(|s| keep(s)).cloned().collect())
    }

    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.union(&other.0).cloned().collect())
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for scope in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(scope)?;
            first = false;
        }
        Ok(())
    }
}

impl TryFrom<String> for ScopeSet {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw)
    }
}

impl From<ScopeSet> for String {
    fn from(s: ScopeSet) -> String {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::ScopeSet;

    #[test]
    fn scopes_parse_dedupe_and_print_sorted() {
        let set = ScopeSet::parse("openid  email openid read:appointments").unwrap();
        assert_eq!(set.to_string(), "email openid read:appointments");
    }

    #[test]
    fn invalid_scope_characters_are_refused() {
        for bad in ["open\"id", "a\\b", "caf\u{e9}"] {
            assert!(ScopeSet::parse(bad).is_err(), "{bad}");
        }
    }
}
