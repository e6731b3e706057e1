//! Users: who signs in, with the claims Lanyard releases about them: the standard OIDC
//! ones, type-checked, and any custom ones (`roles`, `groups`, `tenant`, objects) that
//! custom scopes and APIs' `access_token_claims` release.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::field_errors::FieldErrors;
use crate::oauth::scope::{STANDARD_CLAIMS, ScopeCatalog, ScopeSet};
use crate::tokens::claims::check_claim_name;

/// A registered user. Serialized (CLI `--json`, admin API) with the standard claims beside
/// the account fields and never the password hash.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: String,
    pub username: String,
    #[serde(skip)]
    pub password_hash: String,
    /// Standard and custom claims (never a reserved one such as `sub`, which is `id`).
    #[serde(flatten)]
    pub claims: Map<String, Value>,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl User {
    /// The claims released for `scopes` (OIDC Core §5.4, and the custom scopes of
    /// `catalog`), with `sub`; `preferred_username` defaults to the username.
    pub fn claims_for(&self, scopes: &ScopeSet, catalog: &ScopeCatalog) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("sub".into(), Value::String(self.id.clone()));
        for claim in scopes.iter().flat_map(|scope| catalog.claims_for(scope)) {
            if let Some(value) = self.claim(claim) {
                out.insert(claim.to_owned(), value);
            }
        }
        out
    }

    /// The claims an API puts into its access tokens for this user (those of `names` the
    /// user has), copied as they are.
    pub fn access_token_claims(&self, names: &[String]) -> Map<String, Value> {
        names.iter().filter_map(|name| Some((name.clone(), self.claims.get(name)?.clone()))).collect()
    }

    /// One claim of this user, if the user has it (`sub`, and the defaults of
    /// `preferred_username` and `updated_at`, included).
    pub fn claim(&self, name: &str) -> Option<Value> {
        match name {
            "sub" => Some(Value::String(self.id.clone())),
            _ => self.claims.get(name).cloned().or_else(|| match name {
                "preferred_username" => Some(Value::String(self.username.clone())),
                "updated_at" => Some(Value::from(self.updated_at)),
                _ => None,
            }),
        }
    }

    pub fn display_name(&self) -> &str {
        self.claims.get("name").and_then(Value::as_str).unwrap_or(&self.username)
    }
}

/// Checks a username: 1–64 characters, no whitespace or control characters.
pub fn validate_username(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err("must be 1–64 characters".into());
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".into());
    }
    Ok(name.to_owned())
}

/// The account fields a user is serialized with beside the claims (the admin API, a seed
/// file): a claim of the same name would collide with them.
pub const ACCOUNT_FIELDS: [&str; 8] =
    ["id", "username", "password", "password_hash", "is_admin", "admin", "disabled", "created_at"];

/// The most JSON a user's claims may take together: they travel in tokens and headers.
pub const MAX_CLAIMS_BYTES: usize = 8192;

/// Checks a user's claims. Standard claims (OIDC Core §5.1) must have their JSON type;
/// any other name is a custom claim with any JSON value (`roles`, `groups`, `tenant`, an
/// object), as long as the name is sane and not reserved (`sub`, `aud`, `scope`, … are
/// Lanyard's: [`crate::tokens::claims::RESERVED_CLAIMS`]). `null` and `""` mean "not set".
pub fn validate_claims(claims: Map<String, Value>) -> Result<Map<String, Value>, FieldErrors> {
    let mut errors = FieldErrors::default();
    let mut out = Map::new();
    for (name, value) in claims {
        if value.is_null() || value.as_str().is_some_and(str::is_empty) {
            continue;
        }
        if name == "updated_at" {
            errors.add("claims", "\"updated_at\" is set by Lanyard (the time the user last changed)");
            continue;
        }
        if ACCOUNT_FIELDS.contains(&name.as_str()) {
            errors.add("claims", format!("{name:?} is an account field, not a claim"));
            continue;
        }
        if let Err(e) = check_claim_name(&name) {
            errors.add("claims", e);
            continue;
        }
        let ok = match name.as_str() {
            "email_verified" | "phone_number_verified" => value.is_boolean(),
            "address" => value.is_object(),
            "email" => value.as_str().is_some_and(|e| e.contains('@') && !e.contains(char::is_whitespace)),
            standard if STANDARD_CLAIMS.contains(&standard) => value.is_string(),
            _ => true,
        };
        if ok {
            out.insert(name, value);
        } else {
            errors.add("claims", format!("{name:?} has the wrong type or form"));
        }
    }
    if errors.is_empty() && Value::Object(out.clone()).to_string().len() > MAX_CLAIMS_BYTES {
        errors.add("claims", format!("the claims together must be at most {MAX_CLAIMS_BYTES} bytes of JSON"));
    }
    errors.into_result(out)
}

/// A user to create.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct UserSpec {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub is_admin: bool,
    /// Claims: standard ones (`name`, `email`, `email_verified`, `address` (object), …)
    /// and custom ones (`roles`, `groups`, `tenant`, …).
    #[serde(default, flatten)]
    pub claims: Map<String, Value>,
}

impl UserSpec {
    /// Validates and hashes the password (argon2id, off the executor).
    pub async fn into_user(self) -> Result<User, FieldErrors> {
        let mut errors = FieldErrors::default();
        let username = validate_username(&self.username).unwrap_or_else(|e| {
            errors.add("username", e);
            String::new()
        });
        if let Err(e) = super::password::check_strength(&self.password) {
            errors.add("password", e);
        }
        let claims = validate_claims(self.claims).unwrap_or_else(|e| {
            errors.0.extend(e.0);
            Map::new()
        });
        if !errors.is_empty() {
            return Err(errors);
        }
        let password_hash = super::password::hash(self.password)
            .await
            .map_err(|e| FieldErrors::single("password", format!("cannot be hashed: {e}")))?;
        Ok(Self::user(username, password_hash, claims, self.is_admin))
    }

    /// As [`UserSpec::into_user`], with a password hash instead of the password (a user
    /// from `seed export`); `password` is ignored.
    pub fn into_user_with_hash(self, password_hash: String) -> Result<User, FieldErrors> {
        let mut errors = FieldErrors::default();
        let username = validate_username(&self.username).unwrap_or_else(|e| {
            errors.add("username", e);
            String::new()
        });
        if let Err(e) = super::password::check_hash(&password_hash) {
            errors.add("password_hash", e);
        }
        let claims = validate_claims(self.claims).unwrap_or_else(|e| {
            errors.0.extend(e.0);
            Map::new()
        });
        errors.into_result(Self::user(username, password_hash, claims, self.is_admin))
    }

    fn user(username: String, password_hash: String, claims: Map<String, Value>, is_admin: bool) -> User {
        // Record-keeping (when it was created), not protocol time: the wall clock.
        let now = crate::clock::real_now();
        User {
            id: uuid::Uuid::new_v4().to_string(),
            username,
            password_hash,
            claims,
            is_admin,
            disabled: false,
            created_at: now,
            updated_at: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_are_released_by_scope_only() {
        let user = User {
            id: "u1".into(),
            username: "alice".into(),
            password_hash: String::new(),
            claims: json!({"name": "Alice", "email": "alice@example.test", "phone_number": "+1"})
                .as_object()
                .unwrap()
                .clone(),
            is_admin: false,
            disabled: false,
            created_at: 0,
            updated_at: 0,
        };
        let claims = user.claims_for(&ScopeSet::parse("openid email").unwrap(), &ScopeCatalog::default());
        assert_eq!(claims.get("email"), Some(&json!("alice@example.test")));
        assert!(claims.get("name").is_none());
        assert!(claims.get("phone_number").is_none());
        assert_eq!(claims.get("sub"), Some(&json!("u1")));
    }

    #[test]
    fn claims_are_type_checked() {
        let bad = json!({"email_verified": "yes", "sub": "x", "favourite": "tea"}).as_object().unwrap().clone();
        assert_eq!(validate_claims(bad).unwrap_err().0.len(), 2);
    }

    #[test]
    fn custom_claims_are_kept_and_reserved_ones_refused_by_name() {
        let good = json!({"roles": ["admin"], "groups": ["staff"], "tenant": "acme", "org": {"id": 7}});
        assert_eq!(validate_claims(good.as_object().unwrap().clone()).unwrap().len(), 4);
        for (claims, message) in [
            (json!({"aud": "x"}), "\"aud\" is a reserved claim"),
            (json!({"scope": "admin"}), "\"scope\" is a reserved claim"),
            (json!({"is_admin": true}), "account field"),
            (json!({"has space": 1}), "must start with a letter"),
            (json!({"big": "x".repeat(9000)}), "at most 8192 bytes"),
        ] {
            let err = validate_claims(claims.as_object().unwrap().clone()).unwrap_err().to_string();
            assert!(err.contains(message), "{err}");
        }
    }
}
