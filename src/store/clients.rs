//! The `clients` table.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store, StoreError};
use crate::oauth::redirect_uri::RedirectUri;
use crate::oauth::request_object::RequestUri;
use crate::oauth::scope::ScopeSet;
use crate::registry::client::{AuthMethod, Client, ClientType, GrantType, IdTokenClaimsPolicy, SubjectType};
use crate::registry::client_keys::{AssertionAlg, AuthSigningAlg, ClientJwks};
use crate::registry::client_secret::SealedSecret;

const COLUMNS: &str = "client_id, name, client_type, secret_hash, token_endpoint_auth_method, redirect_uris, \
    post_logout_redirect_uris, grant_types, scope, default_api, require_pkce, first_party, \
    id_token_signed_response_alg, refresh_token_ttl, refresh_token_idle_ttl, created_at, updated_at, \
    jwks, jwks_uri, token_endpoint_auth_signing_alg, backchannel_logout_uri, backchannel_logout_session_required, \
    frontchannel_logout_uri, frontchannel_logout_session_required, id_token_claims, \
    subject_type, sector_identifier_uri, \
    request_uris, request_object_signing_alg, \
    userinfo_signed_response_alg, logo_uri, client_uri, policy_uri, tos_uri, \
    secret_sealed, \
    require_pushed_authorization_requests, refresh_token_reuse_interval, dpop_bound_access_tokens";

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("client {what}"))
}

fn uris(raw: &str) -> Result<Vec<RedirectUri>> {
    let list: Vec<String> = serde_json::from_str(raw).map_err(|_| corrupt("redirect URIs"))?;
    // Stored URIs were validated on the way in; a rule tightened since must not lock the
    // client out, so they are restored as they are.
    Ok(list.into_iter().filter_map(|u| RedirectUri::parse(&u).ok()).collect())
}

fn from_row(row: &AnyRow) -> Result<Client> {
    let client_type: String = row.try_get("client_type")?;
    let auth_method: String = row.try_get("token_endpoint_auth_method")?;
    let grants: String = row.try_get("grant_types")?;
    let grants: Vec<String> = serde_json::from_str(&grants).map_err(|_| corrupt("grant types"))?;
    let scope: String = row.try_get("scope")?;
    let alg: String = row.try_get("id_token_signed_response_alg")?;
    let jwks: Option<String> = row.try_get("jwks")?;
    let assertion_alg: Option<String> = row.try_get("token_endpoint_auth_signing_alg")?;
    let id_token_claims: String = row.try_get("id_token_claims")?;
    let subject_type: String = row.try_get("subject_type")?;
    // Signed userinfo and display metadata (migration 0014).
    let userinfo_alg: Option<String> = row.try_get("userinfo_signed_response_alg")?;
    Ok(Client {
        client_id: row.try_get("client_id")?,
        name: row.try_get("name")?,
        client_type: if client_type == "public" { ClientType::Public } else { ClientType::Confidential },
        secret_hash: row.try_get("secret_hash")?,
        auth_method: AuthMethod::parse(&auth_method).ok_or_else(|| corrupt("auth method"))?,
        redirect_uris: uris(&row.try_get::<String, _>("redirect_uris")?)?,
        post_logout_redirect_uris: uris(&row.try_get::<String, _>("post_logout_redirect_uris")?)?,
        grant_types: grants.iter().filter_map(|g| GrantType::parse(g)).collect(),
        scope: ScopeSet::parse(&scope).map_err(|_| corrupt("scope"))?,
        default_api: row.try_get("default_api")?,
        require_pkce: super::get_flag(row, "require_pkce")?,
        first_party: super::get_flag(row, "first_party")?,
        id_token_alg: alg.parse().map_err(|_| corrupt("id_token alg"))?,
        id_token_claims: IdTokenClaimsPolicy::parse(&id_token_claims).ok_or_else(|| corrupt("id_token_claims"))?,
        refresh_token_ttl: row.try_get("refresh_token_ttl")?,
        refresh_token_idle_ttl: row.try_get("refresh_token_idle_ttl")?,
        jwks: jwks.map(|j| ClientJwks::parse_str(&j)).transpose().map_err(|_| corrupt("jwks"))?,
        jwks_uri: row.try_get("jwks_uri")?,
        assertion_alg: assertion_alg
            .map(|a| AuthSigningAlg::parse(&a).ok_or_else(|| corrupt("token_endpoint_auth_signing_alg")))
            .transpose()?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        backchannel_logout_uri: channel_uri(row, "backchannel_logout_uri")?,
        backchannel_logout_session_required: super::get_flag(row, "backchannel_logout_session_required")?,
        frontchannel_logout_uri: channel_uri(row, "frontchannel_logout_uri")?,
        frontchannel_logout_session_required: super::get_flag(row, "frontchannel_logout_session_required")?,
        from_metadata_document: false,
        // Pairwise subjects.
        subject_type: SubjectType::parse(&subject_type).ok_or_else(|| corrupt("subject_type"))?,
        sector_identifier_uri: channel_uri(row, "sector_identifier_uri")?,
        // Request objects:
        request_uris: request_uris(&row.try_get::<String, _>("request_uris")?)?,
        request_object_alg: row
            .try_get::<Option<String>, _>("request_object_signing_alg")?
            .map(|a| AssertionAlg::parse(&a).ok_or_else(|| corrupt("request_object_signing_alg")))
            .transpose()?,
        // Signed userinfo and display metadata (migration 0014).
        userinfo_alg: userinfo_alg.map(|a| a.parse().map_err(|_| corrupt("userinfo alg"))).transpose()?,
        logo_uri: channel_uri(row, "logo_uri")?,
        client_uri: channel_uri(row, "client_uri")?,
        policy_uri: channel_uri(row, "policy_uri")?,
        tos_uri: channel_uri(row, "tos_uri")?,
        // client_secret_jwt
        secret_sealed: row.try_get::<Option<String>, _>("secret_sealed")?.map(SealedSecret::from_stored),
        // Pushed authorization requests and refresh token reuse (migration 0021).
        require_par: super::get_flag(row, "require_pushed_authorization_requests")?,
        refresh_token_reuse_interval: row.try_get("refresh_token_reuse_interval")?,
        // DPoP (migration 0022)
        dpop_bound_access_tokens: super::get_flag(row, "dpop_bound_access_tokens")?,
    })
}

/// Stored request_uris (validated on the way in; as with redirect URIs, one a tightened
/// rule refuses is dropped rather than locking the client out).
fn request_uris(raw: &str) -> Result<Vec<RequestUri>> {
    let list: Vec<String> = serde_json::from_str(raw).map_err(|_| corrupt("request_uris"))?;
    Ok(list.into_iter().filter_map(|u| RequestUri::parse(&u).ok()).collect())
}

/// A stored URL column: a logout channel, the sector identifier or a display URI
/// (validated on the way in).
fn channel_uri(row: &AnyRow, column: &str) -> Result<Option<url::Url>> {
    let raw: Option<String> = row.try_get(column)?;
    raw.map(|u| url::Url::parse(&u).map_err(|_| corrupt(column))).transpose()
}

fn json_list<T: ToString>(items: &[T]) -> String {
    serde_json::Value::from(items.iter().map(|i| i.to_string()).collect::<Vec<_>>()).to_string()
}

fn jwks_text(c: &Client) -> Option<String> {
    c.jwks.as_ref().map(|j| j.to_value().to_string())
}

fn grant_list(grants: &[GrantType]) -> String {
    json_list(&grants.iter().map(|g| g.as_str()).collect::<Vec<_>>())
}

impl Store {
    pub async fn insert_client(&self, c: &Client) -> Result<()> {
        let sql = format!(
            "INSERT INTO clients ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, \
             $30, $31, $32, $33, $34, $35, \
             $36, $37, $38)"
        );
        sqlx::query(&sql)
            .bind(&c.client_id)
            .bind(&c.name)
            .bind(c.client_type.as_str())
            .bind(&c.secret_hash)
            .bind(c.auth_method.as_str())
            .bind(json_list(&c.redirect_uris))
            .bind(json_list(&c.post_logout_redirect_uris))
            .bind(grant_list(&c.grant_types))
            .bind(c.scope.to_string())
            .bind(&c.default_api)
            .bind(super::flag(c.require_pkce))
            .bind(super::flag(c.first_party))
            .bind(c.id_token_alg.as_str())
            .bind(c.refresh_token_ttl)
            .bind(c.refresh_token_idle_ttl)
            .bind(c.created_at)
            .bind(c.updated_at)
            .bind(jwks_text(c))
            .bind(&c.jwks_uri)
            .bind(c.assertion_alg.map(AuthSigningAlg::as_str))
            .bind(c.backchannel_logout_uri.as_ref().map(url::Url::as_str))
            .bind(super::flag(c.backchannel_logout_session_required))
            .bind(c.frontchannel_logout_uri.as_ref().map(url::Url::as_str))
            .bind(super::flag(c.frontchannel_logout_session_required))
            .bind(c.id_token_claims.as_str())
            .bind(c.subject_type.as_str())
            .bind(c.sector_identifier_uri.as_ref().map(url::Url::as_str))
            .bind(json_list(&c.request_uris))
            .bind(c.request_object_alg.map(AssertionAlg::as_str))
            // Signed userinfo and display metadata (migration 0014).
            .bind(c.userinfo_alg.map(|a| a.as_str()))
            .bind(c.logo_uri.as_ref().map(url::Url::as_str))
            .bind(c.client_uri.as_ref().map(url::Url::as_str))
            .bind(c.policy_uri.as_ref().map(url::Url::as_str))
            .bind(c.tos_uri.as_ref().map(url::Url::as_str))
            .bind(c.secret_sealed.as_ref().map(SealedSecret::as_stored))
            // Pushed authorization requests and refresh token reuse (migration 0021).
            .bind(super::flag(c.require_par))
            .bind(c.refresh_token_reuse_interval)
            // DPoP (migration 0022)
            .bind(super::flag(c.dpop_bound_access_tokens))
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::on_unique(e, format!("client {:?}", c.client_id)))?;
        self.registry_changed(super::Reach::Soon).await;
        Ok(())
    }

    /// Replaces every field but the id, the secret and the creation time. A client that is
    /// no longer client_secret_jwt loses its sealed secret (it keeps the hash).
    pub async fn update_client(&self, c: &Client) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE clients SET name = $1, client_type = $2, token_endpoint_auth_method = $3, redirect_uris = $4, \
             post_logout_redirect_uris = $5, grant_types = $6, scope = $7, default_api = $8, require_pkce = $9, \
             first_party = $10, id_token_signed_response_alg = $11, refresh_token_ttl = $12, \
             refresh_token_idle_ttl = $13, updated_at = $14, jwks = $15, jwks_uri = $16, \
             token_endpoint_auth_signing_alg = $17, backchannel_logout_uri = $19, \
             backchannel_logout_session_required = $20, frontchannel_logout_uri = $21, \
             frontchannel_logout_session_required = $22, id_token_claims = $23, \
             subject_type = $24, sector_identifier_uri = $25, \
             request_uris = $26, request_object_signing_alg = $27, \
             userinfo_signed_response_alg = $28, logo_uri = $29, client_uri = $30, policy_uri = $31, \
             tos_uri = $32, \
             require_pushed_authorization_requests = $33, refresh_token_reuse_interval = $34, \
             dpop_bound_access_tokens = $35, \
             secret_sealed = CASE WHEN $3 = 'client_secret_jwt' THEN secret_sealed ELSE NULL END \
             WHERE client_id = $18",
        )
        .bind(&c.name)
        .bind(c.client_type.as_str())
        .bind(c.auth_method.as_str())
        .bind(json_list(&c.redirect_uris))
        .bind(json_list(&c.post_logout_redirect_uris))
        .bind(grant_list(&c.grant_types))
        .bind(c.scope.to_string())
        .bind(&c.default_api)
        .bind(super::flag(c.require_pkce))
        .bind(super::flag(c.first_party))
        .bind(c.id_token_alg.as_str())
        .bind(c.refresh_token_ttl)
        .bind(c.refresh_token_idle_ttl)
        .bind(self.now())
        .bind(jwks_text(c))
        .bind(&c.jwks_uri)
        .bind(c.assertion_alg.map(AuthSigningAlg::as_str))
        .bind(&c.client_id)
        .bind(c.backchannel_logout_uri.as_ref().map(url::Url::as_str))
        .bind(super::flag(c.backchannel_logout_session_required))
        .bind(c.frontchannel_logout_uri.as_ref().map(url::Url::as_str))
        .bind(super::flag(c.frontchannel_logout_session_required))
        .bind(c.id_token_claims.as_str())
        .bind(c.subject_type.as_str())
        .bind(c.sector_identifier_uri.as_ref().map(url::Url::as_str))
        .bind(json_list(&c.request_uris))
        .bind(c.request_object_alg.map(AssertionAlg::as_str))
        // Signed userinfo and display metadata (migration 0014).
        .bind(c.userinfo_alg.map(|a| a.as_str()))
        .bind(c.logo_uri.as_ref().map(url::Url::as_str))
        .bind(c.client_uri.as_ref().map(url::Url::as_str))
        .bind(c.policy_uri.as_ref().map(url::Url::as_str))
        .bind(c.tos_uri.as_ref().map(url::Url::as_str))
        // Pushed authorization requests and refresh token reuse (migration 0021).
        .bind(super::flag(c.require_par))
        .bind(c.refresh_token_reuse_interval)
        // DPoP (migration 0022)
        .bind(super::flag(c.dpop_bound_access_tokens))
        .execute(&self.pool)
        .await?;
        self.registry_changed(super::Reach::AtOnce).await;
        Ok(done.rows_affected() == 1)
    }

    /// One client, read from the database (request paths use `registry::cache` instead).
    pub async fn client(&self, client_id: &str) -> Result<Option<Client>> {
        let sql = format!("SELECT {COLUMNS} FROM clients WHERE client_id = $1");
        sqlx::query(&sql).bind(client_id).fetch_optional(&self.pool).await?.as_ref().map(from_row).transpose()
    }

    pub async fn list_clients(&self) -> Result<Vec<Client>> {
        let sql = format!("SELECT {COLUMNS} FROM clients ORDER BY name, client_id");
        sqlx::query(&sql).fetch_all(&self.pool).await?.iter().map(from_row).collect()
    }

    pub async fn count_clients(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM clients").fetch_one(&self.pool).await?.try_get("n")?)
    }

    /// Sets the secret of a client that authenticates with one (a private_key_jwt client
    /// has none: a secret would be one more way in). The sealed copy is kept only when the
    /// client is client_secret_jwt at the moment of the write, decided in the statement
    /// itself, so that a concurrent change of auth method cannot leave a stale copy.
    pub async fn set_client_secret(&self, client_id: &str, secret_hash: &str, sealed: &SealedSecret) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE clients SET secret_hash = $1, updated_at = $2, \
             secret_sealed = CASE WHEN token_endpoint_auth_method = 'client_secret_jwt' THEN $4 ELSE NULL END \
             WHERE client_id = $3 AND client_type = 'confidential' \
             AND token_endpoint_auth_method IN ('client_secret_basic', 'client_secret_post', 'client_secret_jwt')",
        )
        .bind(secret_hash)
        .bind(self.now())
        .bind(client_id)
        .bind(sealed.as_stored())
        .execute(&self.pool)
        .await?;
        self.registry_changed(super::Reach::AtOnce).await;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a client, its consents, codes and grants, revoking its tokens.
    pub async fn delete_client(&self, client_id: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        super::grants::revoke_grants(&mut tx, super::grants::GrantOwner::Client, client_id, self.now()).await?;
        for sql in [
            "DELETE FROM consents WHERE client_id = $1",
            "DELETE FROM authorization_codes WHERE client_id = $1",
            "DELETE FROM device_codes WHERE client_id = $1",
            // A client registered again under this id must not inherit its pushed requests.
            "DELETE FROM pushed_authorization_requests WHERE client_id = $1",
        ] {
            sqlx::query(sql).bind(client_id).execute(&mut *tx).await?;
        }
        let done = sqlx::query("DELETE FROM clients WHERE client_id = $1").bind(client_id).execute(&mut *tx).await?;
        tx.commit().await?;
        self.registry_changed(super::Reach::AtOnce).await;
        Ok(done.rows_affected() == 1)
    }
}
