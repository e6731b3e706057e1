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

/// The claims an OpenID Connect scope releases (OIDC Core §5.4); see
/// [`ScopeCatalog::claims_for`] for every scope.
fn oidc_claims(scope: &str) -> &'static [&'static str] {
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

/// A custom scope (`[[scopes]]` in a seed file): like `profile`, it releases user claims
/// to the id_token and userinfo, here claims of the administrator's choosing (`roles`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClaimScope {
    pub name: String,
    /// Shown on the consent page.
    pub description: String,
    pub claims: Vec<String>,
}

/// Every scope that releases user claims: OpenID Connect's and the custom ones. The one
/// place that answers "what does this scope release?", so that the id_token, userinfo,
/// the `claims` parameter and discovery cannot disagree.
#[derive(Debug, Clone, Default)]
pub struct ScopeCatalog {
    custom: Vec<ClaimScope>,
}

impl ScopeCatalog {
    pub fn new(custom: Vec<ClaimScope>) -> Self {
        Self { custom }
    }

    /// The custom scopes.
    pub fn custom(&self) -> &[ClaimScope] {
        &self.custom
    }

    fn find(&self, scope: &str) -> Option<&ClaimScope> {
        self.custom.iter().find(|s| s.name == scope)
    }

    /// The claims `scope` releases (none for an API scope or an unknown one).
    pub fn claims_for<'a>(&'a self, scope: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let custom = self.find(scope).map(|s| s.claims.as_slice()).unwrap_or_default();
        oidc_claims(scope).iter().copied().chain(custom.iter().map(String::as_str))
    }

    /// Whether `scope` is about the user (an OpenID Connect scope or a custom one) rather
    /// than an API's: such scopes go with `openid` and the userinfo audience.
    pub fn is_user_scope(&self, scope: &str) -> bool {
        is_oidc_scope(scope) || self.find(scope).is_some()
    }

    /// The consent page's words for a user scope.
    pub fn description(&self, scope: &str) -> Option<&str> {
        OIDC_SCOPES
            .iter()
            .find(|(name, _)| *name == scope)
            .map(|(_, d)| *d)
            .or_else(|| self.find(scope).map(|s| s.description.as_str()))
    }

    /// Every user scope's name (discovery `scopes_supported`).
    pub fn scope_names(&self) -> Vec<&str> {
        OIDC_SCOPES.iter().map(|(name, _)| *name).chain(self.custom.iter().map(|s| s.name.as_str())).collect()
    }

    /// Every user claim some scope can release (discovery `claims_supported`), standard first.
    pub fn claim_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = STANDARD_CLAIMS.to_vec();
        for claim in self.custom.iter().flat_map(|s| &s.claims) {
            if !names.contains(&claim.as_str()) {
                names.push(claim);
            }
        }
        names
    }

    /// Whether a client allowed `allowed` may ask for the user claim `name` by name (the
    /// `claims` parameter, OIDC Core §5.5): a standard claim, or a claim that a custom
    /// scope the client is allowed releases. So a client never reaches, through the
    /// `claims` parameter, a custom claim its scopes would not give it.
    pub fn may_request(&self, name: &str, allowed: &ScopeSet) -> bool {
        STANDARD_CLAIMS.contains(&name)
            || self.custom.iter().any(|s| allowed.contains(&s.name) && s.claims.iter().any(|c| c == name))
    }

    /// Whether some scope releases the user claim `name`.
    pub fn is_releasable(&self, name: &str) -> bool {
        STANDARD_CLAIMS.contains(&name) || self.custom.iter().any(|s| s.claims.iter().any(|c| c == name))
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
    use super::{ClaimScope, ScopeCatalog, ScopeSet};

    #[test]
    fn custom_scopes_release_their_claims_beside_the_oidc_ones() {
        let catalog = ScopeCatalog::new(vec![ClaimScope {
            name: "roles".into(),
            description: "Your roles".into(),
            claims: vec!["roles".into(), "email".into()],
        }]);
        assert_eq!(catalog.claims_for("roles").collect::<Vec<_>>(), ["roles", "email"]);
        assert_eq!(catalog.claims_for("email").collect::<Vec<_>>(), ["email", "email_verified"]);
        assert!(catalog.is_user_scope("roles") && catalog.is_user_scope("openid"));
        assert!(!catalog.is_user_scope("read:notes"));
        assert_eq!(catalog.description("roles"), Some("Your roles"));
        assert!(catalog.claim_names().contains(&"roles"));
        let allowed = ScopeSet::parse("openid roles").unwrap();
        assert!(catalog.may_request("roles", &allowed));
        assert!(!catalog.may_request("roles", &ScopeSet::parse("openid").unwrap()));
        assert!(!catalog.may_request("tenant", &allowed));
        assert!(catalog.may_request("name", &ScopeSet::default()));
    }

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
