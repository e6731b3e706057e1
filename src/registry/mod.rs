//! What is registered with Lanyard: clients, users, APIs and custom scopes. Each has a `…Spec` (what a
//! caller asks for, with RFC 7591 names for clients) whose one `validate` serves the CLI,
//! the admin page, the admin API and the seed file alike.

pub mod api;
pub mod cache;
pub mod client;
pub mod client_keys;
pub mod client_secret;
mod field_errors;
pub mod password;
pub mod scope;
pub mod sector;
pub mod user;

pub use field_errors::{FieldError, FieldErrors};

/// Failure of a registry operation: the caller's input, a conflict, or the store.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Invalid(FieldErrors),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error(transparent)]
    Store(crate::store::StoreError),
}

impl From<crate::store::StoreError> for RegistryError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Conflict(what) => Self::Conflict(what),
            other => Self::Store(other),
        }
    }
}

impl From<FieldErrors> for RegistryError {
    fn from(e: FieldErrors) -> Self {
        Self::Invalid(e)
    }
}

use crate::store::Store;
pub use sector::FetchPolicy;

/// Registers an API.
pub async fn create_api(store: &Store, spec: api::ApiSpec) -> Result<api::Api, RegistryError> {
    let api = spec.validate()?;
    check_introspection_client(store, &api).await?;
    check_api_scopes_against_custom(store, &api).await?;
    check_exchange_audiences(store, &api).await?;
    store.insert_api(&api).await?;
    Ok(api)
}

/// Replaces an API's name, scopes, lifetime, algorithm, introspection client and token
/// exchange audiences (the identifier and creation time stay).
pub async fn update_api(store: &Store, spec: api::ApiSpec) -> Result<api::Api, RegistryError> {
    let mut api = spec.validate()?;
    let existing = store
        .api(&api.identifier)
        .await?
        .ok_or_else(|| RegistryError::NotFound(format!("API {:?}", api.identifier)))?;
    api.created_at = existing.created_at;
    check_introspection_client(store, &api).await?;
    check_api_scopes_against_custom(store, &api).await?;
    check_exchange_audiences(store, &api).await?;
    if !store.update_api(&api).await? {
        return Err(RegistryError::NotFound(format!("API {:?}", api.identifier)));
    }
    Ok(api)
}

/// An API's introspection client must be a registered confidential client.
async fn check_introspection_client(store: &Store, api: &api::Api) -> Result<(), RegistryError> {
    let Some(client_id) = &api.introspection_client_id else { return Ok(()) };
    match store.client(client_id).await? {
        Some(c) if c.client_type == client::ClientType::Confidential => Ok(()),
        Some(_) => Err(FieldErrors::single("introspection_client_id", "must be a confidential client").into()),
        None => {
            Err(FieldErrors::single("introspection_client_id", format!("{client_id:?} is not a registered client"))
                .into())
        }
    }
}

/// Every API an API may exchange tokens for (RFC 8693) must be registered: a typo would
/// otherwise surface only as `invalid_target` at run time.
async fn check_exchange_audiences(store: &Store, api: &api::Api) -> Result<(), RegistryError> {
    if api.token_exchange_audiences.is_empty() {
        return Ok(());
    }
    let registered = store.list_apis().await?;
    let mut errors = FieldErrors::default();
    for audience in &api.token_exchange_audiences {
        if !registered.iter().any(|a| &a.identifier == audience) {
            errors.add("token_exchange_audiences", format!("{audience:?} is not a registered API"));
        }
    }
    errors.into_result(()).map_err(RegistryError::Invalid)
}

/// An API scope may not have a custom scope's name: a scope means one thing.
async fn check_api_scopes_against_custom(store: &Store, api: &api::Api) -> Result<(), RegistryError> {
    let custom = store.list_claim_scopes().await?;
    let mut errors = FieldErrors::default();
    for scope in api.scopes.iter().filter(|s| custom.iter().any(|c| c.name == s.name)) {
        errors.add("scopes", format!("{:?} is a custom scope that releases user claims", scope.name));
    }
    errors.into_result(()).map_err(RegistryError::Invalid)
}

/// Registers a custom scope.
pub async fn create_claim_scope(
    store: &Store,
    spec: scope::ClaimScopeSpec,
) -> Result<crate::oauth::scope::ClaimScope, RegistryError> {
    let scope = spec.validate()?;
    check_custom_scope_against_apis(store, &scope).await?;
    store.insert_claim_scope(&scope).await?;
    Ok(scope)
}

/// Replaces a custom scope's description and claims.
pub async fn update_claim_scope(
    store: &Store,
    spec: scope::ClaimScopeSpec,
) -> Result<crate::oauth::scope::ClaimScope, RegistryError> {
    let scope = spec.validate()?;
    if !store.update_claim_scope(&scope).await? {
        return Err(RegistryError::NotFound(format!("scope {:?}", scope.name)));
    }
    Ok(scope)
}

/// Creates or replaces a custom scope (the seed file).
pub async fn upsert_claim_scope(store: &Store, spec: scope::ClaimScopeSpec) -> Result<(), RegistryError> {
    let scope = spec.validate()?;
    check_custom_scope_against_apis(store, &scope).await?;
    if !store.update_claim_scope(&scope).await? {
        store.insert_claim_scope(&scope).await?;
    }
    Ok(())
}

async fn check_custom_scope_against_apis(
    store: &Store,
    scope: &crate::oauth::scope::ClaimScope,
) -> Result<(), RegistryError> {
    let owners: Vec<String> =
        store.list_apis().await?.into_iter().filter(|a| a.defines(&scope.name)).map(|a| a.identifier).collect();
    if owners.is_empty() {
        return Ok(());
    }
    Err(FieldErrors::single("name", format!("{:?} is already a scope of {}", scope.name, owners.join(", "))).into())
}

/// Registers a user (password hashed with argon2id).
pub async fn create_user(store: &Store, spec: user::UserSpec) -> Result<user::User, RegistryError> {
    let user = spec.into_user().await?;
    store.insert_user(&user).await?;
    Ok(user)
}

/// Registers a client, as [`create_client_with`] outside dev mode (a sector document on a
/// loopback address is refused).
pub async fn create_client(store: &Store, spec: client::ClientSpec) -> Result<client::NewClient, RegistryError> {
    create_client_with(store, spec, FetchPolicy::default()).await
}

/// Registers a client. Beyond `ClientSpec::validate`, every scope must be an OpenID
/// Connect scope or one that a registered API defines, `default_api` must exist, and a
/// `sector_identifier_uri` must serve a document listing the redirect URIs (fetched as
/// `fetch` allows). A client_secret_jwt client's secret is sealed under the store's
/// key-encryption key.
pub async fn create_client_with(
    store: &Store,
    spec: client::ClientSpec,
    fetch: FetchPolicy,
) -> Result<client::NewClient, RegistryError> {
    let mut new = spec.validate()?;
    check_client_against_apis(store, &new.client).await?;
    sector::check_sector_document(&new.client, fetch).await?;
    if let (client::AuthMethod::ClientSecretJwt, Some(secret)) = (new.client.auth_method, &new.secret) {
        new.client.secret_sealed = Some(seal(store, &new.client.client_id, secret)?);
    }
    store.insert_client(&new.client).await?;
    Ok(new)
}

fn seal(store: &Store, client_id: &str, secret: &str) -> Result<client_secret::SealedSecret, RegistryError> {
    client_secret::SealedSecret::seal(store.key_encryption_key(), client_id, secret)
        .map_err(|e| RegistryError::Store(e.into()))
}

/// Replaces a client's settings, as [`update_client_with`] outside dev mode.
pub async fn update_client(store: &Store, client: &client::Client) -> Result<(), RegistryError> {
    update_client_with(store, client, FetchPolicy::default()).await
}

/// Replaces a client's settings (not its id or secret). Its sector document is fetched
/// again when its redirect URIs or its `sector_identifier_uri` change.
pub async fn update_client_with(
    store: &Store,
    client: &client::Client,
    fetch: FetchPolicy,
) -> Result<(), RegistryError> {
    check_client_against_apis(store, client).await?;
    let existing = store.client(&client.client_id).await?;
    let sector_unchanged = existing.as_ref().is_some_and(|e| {
        e.sector_identifier_uri == client.sector_identifier_uri && e.redirect_uris == client.redirect_uris
    });
    if !sector_unchanged {
        sector::check_sector_document(client, fetch).await?;
    }
    if !store.update_client(client).await? {
        return Err(RegistryError::NotFound(format!("client {:?}", client.client_id)));
    }
    Ok(())
}

async fn check_client_against_apis(store: &Store, client: &client::Client) -> Result<(), RegistryError> {
    let apis = store.list_apis().await?;
    let catalog = crate::oauth::scope::ScopeCatalog::new(store.list_claim_scopes().await?);
    let mut errors = FieldErrors::default();
    for scope in client.scope.iter() {
        if !catalog.is_user_scope(scope) && !apis.iter().any(|a| a.defines(scope)) {
            errors.add(
                "scope",
                format!(
                    "{scope:?} is neither an OpenID Connect scope nor defined by a registered API or as a custom scope"
                ),
            );
        }
    }
    if let Some(default_api) = &client.default_api
        && !apis.iter().any(|a| &a.identifier == default_api)
    {
        errors.add("default_api", format!("{default_api:?} is not a registered API"));
    }
    errors.into_result(()).map_err(RegistryError::Invalid)
}

/// Sets a new generated secret for a confidential client and returns it (shown once). A
/// client_secret_jwt client's is 512 bits (an HS512 key) and sealed anew.
pub async fn rotate_client_secret(store: &Store, client_id: &str) -> Result<String, RegistryError> {
    // Should the auth method change meanwhile, the statement that writes the secret still
    // decides whether to keep the sealed copy; only the length could be the other kind's.
    let jwt = store.client(client_id).await?.is_some_and(|c| c.auth_method == client::AuthMethod::ClientSecretJwt);
    let secret = crate::crypto::random_token(if jwt { client::CLIENT_SECRET_JWT_BYTES } else { 32 });
    set_client_secret(store, client_id, &secret).await?;
    Ok(secret)
}

/// Sets a chosen secret (a seed's) for a confidential client: its hash, and for a
/// client_secret_jwt client the sealed copy its assertions are checked with.
pub async fn set_client_secret(store: &Store, client_id: &str, secret: &str) -> Result<(), RegistryError> {
    let sealed = seal(store, client_id, secret)?;
    if !store.set_client_secret(client_id, &crate::crypto::sha256_hex(secret), &sealed).await? {
        return Err(RegistryError::NotFound(format!("confidential client {client_id:?}")));
    }
    Ok(())
}

/// Sets (or, with `null`, removes) some of a user's claims, keeping the others; the result
/// is validated as a whole (reserved names refused, standard claims type-checked).
pub async fn set_user_claims(
    store: &Store,
    username: &str,
    changes: serde_json::Map<String, serde_json::Value>,
) -> Result<user::User, RegistryError> {
    let mut found =
        store.user_by_username(username).await?.ok_or_else(|| RegistryError::NotFound(format!("user {username:?}")))?;
    let mut claims = found.claims.clone();
    for (name, value) in changes {
        if value.is_null() {
            claims.remove(&name);
        } else {
            claims.insert(name, value);
        }
    }
    found.claims = user::validate_claims(claims)?;
    if !store.update_user(&found).await? {
        return Err(RegistryError::NotFound(format!("user {username:?}")));
    }
    Ok(found)
}

/// Sets a user's password (checked for strength, hashed with argon2id).
pub async fn set_password(store: &Store, username: &str, password: String) -> Result<(), RegistryError> {
    password::check_strength(&password).map_err(|e| FieldErrors::single("password", e))?;
    let user =
        store.user_by_username(username).await?.ok_or_else(|| RegistryError::NotFound(format!("user {username:?}")))?;
    let hash = password::hash(password).await.map_err(|e| FieldErrors::single("password", e))?;
    store.set_user_password(&user.id, &hash).await?;
    Ok(())
}
