//! Seed files (`--seed FILE`, `LANYARD_SEED`): users, APIs, custom scopes, clients, admin tokens and,
//! optionally, fixed signing keys, applied at every start. Applying is idempotent: each
//! entry is upserted by its identifier and nothing else is touched. Every entry is
//! validated before anything is written, and an error names the file, line and field.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use toml::Spanned;

use crate::registry::api::{ApiSpec, ScopeSpec};
use crate::registry::client::{ClientSpec, ClientType};
use crate::registry::scope::ClaimScopeSpec;
use crate::registry::user::{validate_claims, validate_username};
use crate::registry::{self, FieldErrors, RegistryError, password};
use crate::store::{Store, StoreError};
use crate::tokens::keys::{self, KeyMaterial, SigningAlg};

/// A parsed, validated seed file.
#[derive(Debug, Clone)]
pub struct Seed {
    path: PathBuf,
    /// The file's text, for the line numbers of errors found when it is applied.
    text: String,
    file: SeedFile,
}

/// The file as written (the admin API's names; RFC 7591 metadata for clients).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<Spanned<SeedUser>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apis: Vec<Spanned<ApiSpec>>,
    /// Custom scopes: `name`, `claims` (the user claims released), `description`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<Spanned<ClaimScopeSpec>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<Spanned<ClientSpec>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admin_tokens: Vec<Spanned<SeedAdminToken>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<Spanned<SeedKey>>,
}

/// A user; `password` may be omitted for a user that exists already, or replaced by the
/// `password_hash` that `seed export` writes.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SeedUser {
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// An argon2id PHC string (from `seed export`): the user keeps that password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    #[serde(default, alias = "admin", skip_serializing_if = "std::ops::Not::not")]
    pub is_admin: bool,
    /// Every other key is a claim: standard ones (name, email, email_verified, …) and
    /// custom ones (roles, groups, tenant, nested tables, …).
    #[serde(flatten)]
    pub claims: Map<String, Value>,
}

/// An admin API token with a fixed value (for CI).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeedAdminToken {
    pub name: String,
    pub token: String,
}

/// A fixed signing key, so tokens verify against a JWKS a test suite can pin.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeedKey {
    /// RS256 or ES256.
    pub alg: String,
    /// A PKCS#8 / traditional PEM private key…
    #[serde(default)]
    pub pem: Option<String>,
    /// …or a private JWK (a JSON string or an inline table).
    #[serde(default)]
    pub jwk: Option<toml::Value>,
}

/// A seed file that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("seed file {path}: {message}")]
    Read { path: String, message: String },
    #[error("seed file {path}, line {line}: {what}: {errors}")]
    Invalid { path: String, line: usize, what: String, errors: FieldErrors },
    #[error("seed file {path}, line {line}: applying {what} failed: {message}")]
    Apply { path: String, line: usize, what: String, message: String },
}

impl Seed {
    /// Reads, parses and validates a seed file.
    pub fn load(path: &Path) -> Result<Self, SeedError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| SeedError::Read { path: shown.clone(), message: e.to_string() })?;
        Self::parse(&shown, &text)
    }

    /// Parses and validates seed text (`name` is used in messages).
    pub fn parse(name: &str, text: &str) -> Result<Self, SeedError> {
        // The TOML parser's message already carries the line, column and key.
        let file: SeedFile =
            toml::from_str(text).map_err(|e| SeedError::Read { path: name.to_owned(), message: e.to_string() })?;
        let invalid = |span: std::ops::Range<usize>, what: String, errors: FieldErrors| SeedError::Invalid {
            path: name.to_owned(),
            line: text[..span.start.min(text.len())].matches('\n').count() + 1,
            what,
            errors,
        };
        for (i, user) in file.users.iter().enumerate() {
            let u = user.get_ref();
            let mut errors = FieldErrors::default();
            if let Err(e) = validate_username(&u.username) {
                errors.add("username", e);
            }
            if let Some(p) = &u.password
                && let Err(e) = password::check_strength(p)
            {
                errors.add("password", e);
            }
            match (&u.password, &u.password_hash) {
                (Some(_), Some(_)) => errors.add("password_hash", "give password or password_hash, not both"),
                (None, Some(hash)) => {
                    if let Err(e) = password::check_hash(hash) {
                        errors.add("password_hash", e);
                    }
                }
                _ => {}
            }
            if let Err(e) = validate_claims(u.claims.clone()) {
                errors.0.extend(e.0);
            }
            if !errors.is_empty() {
                return Err(invalid(user.span(), format!("users[{i}] ({:?})", u.username), errors));
            }
        }
        for (i, api) in file.apis.iter().enumerate() {
            if let Err(errors) = api.get_ref().clone().validate() {
                return Err(invalid(api.span(), format!("apis[{i}] ({:?})", api.get_ref().identifier), errors));
            }
        }
        for (i, scope) in file.scopes.iter().enumerate() {
            if let Err(errors) = scope.get_ref().clone().validate() {
                return Err(invalid(scope.span(), format!("scopes[{i}] ({:?})", scope.get_ref().name), errors));
            }
        }
        for (i, client) in file.clients.iter().enumerate() {
            let spec = client.get_ref();
            let what = format!("clients[{i}] ({:?})", spec.client_id.as_deref().unwrap_or(""));
            if spec.client_id.as_deref().is_none_or(str::is_empty) {
                return Err(invalid(
                    client.span(),
                    what,
                    FieldErrors::single("client_id", "is required in a seed file"),
                ));
            }
            if let Err(errors) = spec.clone().validate() {
                return Err(invalid(client.span(), what, errors));
            }
        }
        for (i, token) in file.admin_tokens.iter().enumerate() {
            let t = token.get_ref();
            if t.token.len() < 16 || t.name.trim().is_empty() {
                let errors = FieldErrors::single("token", "needs a name and a token of at least 16 characters");
                return Err(invalid(token.span(), format!("admin_tokens[{i}]"), errors));
            }
        }
        for (i, key) in file.keys.iter().enumerate() {
            if let Err(errors) = key_material(key.get_ref()) {
                return Err(invalid(key.span(), format!("keys[{i}]"), errors));
            }
        }
        Ok(Self { path: PathBuf::from(name), text: text.to_owned(), file })
    }

    /// The fixed signing keys, ready to install (encrypted when a KEK is configured).
    pub fn signing_keys(&self, kek: Option<&[u8; 32]>) -> Result<Vec<crate::store::keys::StoredKey>, SeedError> {
        self.file
            .keys
            .iter()
            .map(|key| {
                let (alg, material) =
                    key_material(key.get_ref()).map_err(|e| self.apply_error(key.span(), "keys", e))?;
                keys::import(alg, &material, kek).map_err(|e| self.apply_error(key.span(), "keys", e))
            })
            .collect()
    }

    /// An error found applying the entry at `span` (what only the database can tell: a
    /// client naming an API that does not exist, a scope no API defines, …), with its line.
    fn apply_error(&self, span: std::ops::Range<usize>, what: &str, message: impl ToString) -> SeedError {
        SeedError::Apply {
            path: self.path.display().to_string(),
            line: line_of(&self.text, span.start),
            what: what.to_owned(),
            message: message.to_string(),
        }
    }

    /// Upserts APIs, custom scopes, clients, users and admin tokens (keys are installed
    /// separately, before the key ring starts). `fetch`: how a client's sector document may
    /// be fetched.
    pub async fn apply(&self, store: &Store, fetch: registry::FetchPolicy) -> Result<(), SeedError> {
        // APIs may name an introspection client that the seed creates below, and token
        // exchange audiences that come later in the file: first without them, then again
        // once the clients and every API exist.
        for entry in &self.file.apis {
            let api = entry.get_ref();
            let first = ApiSpec { introspection_client_id: None, token_exchange_audiences: Vec::new(), ..api.clone() };
            let what = format!("API {:?}", api.identifier);
            upsert_api(store, first).await.map_err(|e| self.apply_error(entry.span(), &what, e))?;
        }
        // Custom scopes after the APIs (their names must differ) and before the clients
        // (which may be allowed them).
        for scope in &self.file.scopes {
            let spec = scope.get_ref().clone();
            let what = format!("scope {:?}", spec.name);
            registry::upsert_claim_scope(store, spec).await.map_err(|e| self.apply_error(scope.span(), &what, e))?;
        }
        for client in &self.file.clients {
            let spec = client.get_ref().clone();
            let what = format!("client {:?}", spec.client_id.as_deref().unwrap_or_default());
            upsert_client(store, spec, fetch).await.map_err(|e| self.apply_error(client.span(), &what, e))?;
        }
        for entry in self.file.apis.iter().filter(|a| {
            let api = a.get_ref();
            api.introspection_client_id.is_some() || !api.token_exchange_audiences.is_empty()
        }) {
            let api = entry.get_ref().clone();
            let what = format!("API {:?}", api.identifier);
            upsert_api(store, api).await.map_err(|e| self.apply_error(entry.span(), &what, e))?;
        }
        for user in &self.file.users {
            let u = user.get_ref().clone();
            let what = format!("user {:?}", u.username);
            upsert_user(store, u).await.map_err(|e| self.apply_error(user.span(), &what, e))?;
        }
        for token in &self.file.admin_tokens {
            let t = token.get_ref();
            let failed = |e: StoreError| self.apply_error(token.span(), "admin token", e);
            let hash = crate::crypto::sha256_hex(&t.token);
            let current = store.admin_token_by_hash(&hash).await.map_err(failed)?;
            if current.is_some_and(|c| c.name == t.name) {
                continue;
            }
            store.delete_admin_token(&t.name).await.map_err(failed)?;
            store.insert_admin_token(&t.name, &hash).await.map_err(failed)?;
        }
        Ok(())
    }
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn key_material(key: &SeedKey) -> Result<(SigningAlg, KeyMaterial), FieldErrors> {
    let alg: SigningAlg = key.alg.parse().map_err(|e: String| FieldErrors::single("alg", e))?;
    let material = match (&key.pem, &key.jwk) {
        (Some(pem), None) => KeyMaterial::Pem(pem.clone()),
        (None, Some(toml::Value::String(json))) => KeyMaterial::Jwk(json.clone()),
        (None, Some(table @ toml::Value::Table(_))) => {
            KeyMaterial::Jwk(serde_json::to_string(table).map_err(|e| FieldErrors::single("jwk", e.to_string()))?)
        }
        _ => return Err(FieldErrors::single("pem", "give exactly one of pem or jwk")),
    };
    keys::import(alg, &material, None).map_err(|e| FieldErrors::single("pem", e.to_string()))?;
    Ok((alg, material))
}

async fn upsert_api(store: &Store, spec: ApiSpec) -> Result<(), RegistryError> {
    match store.api(spec.identifier.trim()).await? {
        None => registry::create_api(store, spec).await.map(|_| ()),
        Some(_) => registry::update_api(store, spec).await.map(|_| ()),
    }
}

async fn upsert_client(store: &Store, spec: ClientSpec, fetch: registry::FetchPolicy) -> Result<(), RegistryError> {
    let fixed_secret = spec.client_secret.clone().filter(|s| !s.is_empty());
    let id = spec.client_id.clone().unwrap_or_default();
    match store.client(&id).await? {
        None => {
            let new = registry::create_client_with(store, spec, fetch).await?;
            if let (Some(secret), None) = (&new.secret, &fixed_secret) {
                tracing::warn!(client_id = %id, "seeded client has a generated secret (shown once): {secret}");
            }
        }
        Some(existing) => {
            let mut client = spec.validate()?.client;
            client.created_at = existing.created_at;
            registry::update_client_with(store, &client, fetch).await?;
            match (client.client_type, fixed_secret) {
                (ClientType::Confidential, Some(secret)) => registry::set_client_secret(store, &id, &secret).await?,
                // A public client made confidential, or one switched to client_secret_jwt
                // (whose secret was kept as a hash only): a new secret, shown once.
                (ClientType::Confidential, None) if client.needs_new_secret(&existing) => {
                    let secret = registry::rotate_client_secret(store, &id).await?;
                    tracing::warn!(client_id = %id, "seeded client has a generated secret (shown once): {secret}");
                }
                _ => {}
            }
        }
    }
    Ok(())
}

async fn upsert_user(store: &Store, seed: SeedUser) -> Result<(), RegistryError> {
    let claims = validate_claims(seed.claims)?;
    match store.user_by_username(seed.username.trim()).await? {
        None => match (seed.password, seed.password_hash) {
            (Some(password), _) => {
                let spec =
                    registry::user::UserSpec { username: seed.username, password, is_admin: seed.is_admin, claims };
                registry::create_user(store, spec).await.map(|_| ())
            }
            // An exported user: created with the password it had.
            (None, Some(hash)) => {
                let spec = registry::user::UserSpec {
                    username: seed.username,
                    password: String::new(),
                    is_admin: seed.is_admin,
                    claims,
                };
                let user = spec.into_user_with_hash(hash)?;
                store.insert_user(&user).await?;
                Ok(())
            }
            (None, None) => Err(FieldErrors::single(
                "password",
                "is required for a user that does not exist yet (or password_hash, as seed export writes it)",
            )
            .into()),
        },
        Some(mut user) => {
            user.claims = claims;
            user.is_admin = seed.is_admin;
            store.update_user(&user).await?;
            if seed.password.is_none()
                && let Some(hash) = seed.password_hash.filter(|h| *h != user.password_hash)
            {
                store.set_user_password(&user.id, &hash).await?;
            }
            // Re-hash only when the password changed: argon2 is slow on purpose.
            if let Some(password) = seed.password
                && !password::verify(password.clone(), Some(user.password_hash.clone())).await
            {
                let hash = password::hash(password).await.map_err(|e| FieldErrors::single("password", e))?;
                store.set_user_password(&user.id, &hash).await?;
            }
            Ok(())
        }
    }
}

/// The current clients, users and APIs as a seed file (secrets and passwords omitted).
pub async fn export(store: &Store) -> Result<String, StoreError> {
    let mut file = SeedFile::default();
    for api in store.list_apis().await? {
        file.apis.push(Spanned::new(
            0..0,
            ApiSpec {
                identifier: api.identifier,
                name: api.name,
                scopes: api.scopes.into_iter().map(ScopeSpec::Full).collect(),
                access_token_ttl: Some(api.access_token_ttl),
                signing_alg: Some(api.signing_alg.as_str().into()),
                introspection_client_id: api.introspection_client_id,
                access_token_claims: api.access_token_claims,
                token_exchange_audiences: api.token_exchange_audiences,
            },
        ));
    }
    for scope in store.list_claim_scopes().await? {
        file.scopes.push(Spanned::new(0..0, ClaimScopeSpec::from(scope)));
    }
    for c in store.list_clients().await? {
        file.clients.push(Spanned::new(
            0..0,
            ClientSpec {
                client_id: Some(c.client_id),
                client_name: Some(c.name),
                client_secret: None,
                redirect_uris: c.redirect_uris.iter().map(ToString::to_string).collect(),
                post_logout_redirect_uris: c.post_logout_redirect_uris.iter().map(ToString::to_string).collect(),
                grant_types: c.grant_types.iter().map(|g| g.as_str().to_owned()).collect(),
                scope: Some(c.scope.to_string()),
                token_endpoint_auth_method: Some(c.auth_method.as_str().into()),
                default_api: c.default_api,
                first_party: Some(c.first_party),
                require_pkce: Some(c.require_pkce),
                id_token_signed_response_alg: Some(c.id_token_alg.as_str().into()),
                id_token_claims: Some(c.id_token_claims.as_str().into()),
                refresh_token_ttl: Some(c.refresh_token_ttl),
                refresh_token_idle_ttl: Some(c.refresh_token_idle_ttl),
                jwks: c.jwks.as_ref().map(|j| j.to_value()),
                jwks_uri: c.jwks_uri,
                token_endpoint_auth_signing_alg: c.assertion_alg.map(|a| a.as_str().to_owned()),
                backchannel_logout_uri: c.backchannel_logout_uri.map(String::from),
                backchannel_logout_session_required: Some(c.backchannel_logout_session_required),
                frontchannel_logout_uri: c.frontchannel_logout_uri.map(String::from),
                frontchannel_logout_session_required: Some(c.frontchannel_logout_session_required),
                subject_type: Some(c.subject_type.as_str().into()),
                sector_identifier_uri: c.sector_identifier_uri.map(String::from),
                request_uris: c.request_uris.iter().map(ToString::to_string).collect(),
                request_object_signing_alg: c.request_object_alg.map(|a| a.as_str().to_owned()),
                // Signed userinfo and display metadata.
                userinfo_signed_response_alg: c.userinfo_alg.map(|a| a.as_str().to_owned()),
                logo_uri: c.logo_uri.map(String::from),
                client_uri: c.client_uri.map(String::from),
                policy_uri: c.policy_uri.map(String::from),
                tos_uri: c.tos_uri.map(String::from),
                require_pushed_authorization_requests: Some(c.require_par),
                refresh_token_reuse_interval: Some(c.refresh_token_reuse_interval),
                dpop_bound_access_tokens: Some(c.dpop_bound_access_tokens),
            },
        ));
    }
    for u in store.list_users("", i64::MAX).await? {
        file.users.push(Spanned::new(
            0..0,
            SeedUser {
                username: u.username,
                password: None,
                password_hash: Some(u.password_hash),
                is_admin: u.is_admin,
                claims: u.claims,
            },
        ));
    }
    let body = toml::to_string_pretty(&file).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(format!(
        "# Exported by `lanyard seed export`: users with their argon2id password hashes (keep this\n\
         # file as private as the database), clients without secrets (Lanyard keeps only their\n\
         # hashes: add `client_secret` where a fresh database needs one).\n\n{body}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_example_parses() {
        let seed = Seed::parse(
            "seed.toml",
            r#"
[[users]]
username = "alice"
password = "alice-password"
email = "alice@example.test"
name = "Alice Example"

[[apis]]
identifier = "https://api.example.test/appointments"
name = "Appointments"
scopes = ["read:appointments", "write:appointments"]

[[clients]]
client_id = "web"
client_secret = "web-secret"
redirect_uris = ["http://127.0.0.1:9999/cb"]
scope = "openid profile email offline_access read:appointments"
grant_types = ["authorization_code", "refresh_token"]
"#,
        )
        .unwrap();
        assert_eq!(seed.file.clients.len(), 1);
    }

    #[test]
    fn a_device_client_is_seeded_with_the_rfc_8628_grant_and_no_redirect_uri() {
        let seed = Seed::parse(
            "seed.toml",
            r#"
[[clients]]
client_id = "tv"
token_endpoint_auth_method = "none"
grant_types = ["urn:ietf:params:oauth:grant-type:device_code"]
scope = "openid profile"
"#,
        )
        .unwrap();
        assert_eq!(seed.file.clients.len(), 1);
    }

    #[test]
    fn an_invalid_entry_is_refused_with_its_line_and_field() {
        let err = Seed::parse(
            "seed.toml",
            "[[clients]]\nclient_id = \"ok\"\nredirect_uris = [\"http://127.0.0.1/cb\"]\n\n[[clients]]\nclient_id = \"bad\"\nredirect_uris = [\"http://evil.example/cb\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 5"), "{err}");
        assert!(err.contains("redirect_uris"), "{err}");
        assert!(err.contains("seed.toml"), "{err}");
    }

    #[test]
    fn custom_claims_and_scopes_parse_and_reserved_claims_are_refused_by_name() {
        let seed = Seed::parse(
            "seed.toml",
            r#"
[[users]]
username = "alice"
password = "alice-password"
roles = ["admin"]
groups = ["staff"]
tenant = "acme"
org = { id = 7, name = "Acme" }

[[scopes]]
name = "roles"
claims = ["roles"]
description = "Your roles"
"#,
        )
        .unwrap();
        assert_eq!(seed.file.users[0].get_ref().claims["roles"], serde_json::json!(["admin"]));
        assert_eq!(seed.file.scopes.len(), 1);
        let err = Seed::parse("seed.toml", "[[users]]\nusername = \"bob\"\npassword = \"bob-password\"\naud = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"aud\" is a reserved claim"), "{err}");
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn syntax_errors_carry_the_parser_location() {
        let err = Seed::parse("seed.toml", "[[users]]\nusername = \n").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }
}
