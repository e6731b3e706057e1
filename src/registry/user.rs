//! Users: who signs in, with the standard OIDC claims Lanyard releases about them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::field_errors::FieldErrors;
use crate::oauth::scope::STANDARD_CLAIMS;

/// A registered user. Serialized (CLI `--json`, admin API) with the standard claims beside
/// the account fields and never the password hash.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: String,
    pub username: String,
    #[serde(skip)]
    pub password_hash: String,
    /// Standard claims (never `sub`, which is `id`).
    #[serde(flatten)]
    pub claims: Map<String, Value>,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl User {
    /// The claims released for `scopes`, with `sub` (OIDC Core §5.4); `preferred_username`
    /// defaults to the username.
    pub fn claims_for(&self, scopes: &crate::oauth::scope::ScopeSet) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("sub".into(), Value::String(self.id.clone()));
        for scope in scopes.iter() {
            for claim in crate::oauth::scope::claims_for_scope(scope) {
                if let Some(value) = self.claims.get(*claim) {
                    out.insert((*claim).into(), value.clone());
                } else if *claim == "preferred_username" {
                    out.insert("preferred_username".into(), Value::String(self.username.clone()));
                } else if *claim == "updated_at" {
                    out.insert("updated_at".into(), Value::from(self.updated_at));
                }
            }
        }
        out
    }

    /// One standard claim of this user, if the user has it (`sub`, and the defaults of
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

/// Checks standard claims: known names only, and the JSON type each one has in OIDC Core §5.1.
pub fn validate_claims(claims: Map<String, Value>) -> Result<Map<String, Value>, FieldErrors> {
    let mut errors = FieldErrors::default();
    let mut out = Map::new();
    for (name, value) in claims {
        if value.is_null() || value.as_str().is_some_and(str::is_empty) {
            continue;
        }
        if !STANDARD_CLAIMS.contains(&name.as_str()) || name == "updated_at" {
            errors.add("claims", format!("{name:?} is not a standard claim Lanyard stores"));
            continue;
        }
        let ok = match name.as_str() {
            "email_verified" | "phone_number_verified" => value.is_boolean(),
            "address" => value.is_object(),
            "email" => value.as_str().is_some_and(|e| e.contains('@') && !e.contains(char::is_whitespace)),
            _ => value.is_string(),
        };
        if ok {
            out.insert(name, value);
        } else {
            errors.add("claims", format!("{name:?} has the wrong type or form"));
        }
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
    /// Standard claims: `name`, `email`, `email_verified`, `address` (object), ….
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
        let now = crate::clock::now();
        Ok(User {
            id: uuid::Uuid::new_v4().to_string(),
            username,
            password_hash,
            claims,
            is_admin: self.is_admin,
            disabled: false,
            created_at: now,
            updated_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::scope::ScopeSet;
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
        let claims = user.claims_for(&ScopeSet::parse("openid email").unwrap());
        assert_eq!(claims.get("email"), Some(&json!("alice@example.test")));
        assert!(claims.get("name").is_none());
        assert!(claims.get("phone_number").is_none());
        assert_eq!(claims.get("sub"), Some(&json!("u1")));
    }

    #[test]
    fn claims_are_type_checked() {
        let bad = json!({"email_verified": "yes", "sub": "x", "favourite": "tea"}).as_object().unwrap().clone();
        assert_eq!(validate_claims(bad).unwrap_err().0.len(), 3);
    }
}
