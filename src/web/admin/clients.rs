//! Clients: list, register, edit, rotate the secret, delete. Every rule is `ClientSpec`'s
//! (and `registry::create_client`/`update_client`'s); this module only maps a form to a
//! spec and back.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::form::{self, Done, Fields};
use super::{Admin, AdminError, Chrome, require_admin, require_admin_form, when};
use crate::registry::client::{
    AuthMethod, Client, ClientSpec, ClientType, DEFAULT_REFRESH_TOKEN_IDLE_TTL, DEFAULT_REFRESH_TOKEN_TTL, GrantType,
    IdTokenClaimsPolicy, SubjectType,
};
use crate::registry::client_keys::{AssertionAlg, MacAlg};
use crate::registry::{self, FieldErrors};
use crate::state::AppState;
use crate::tokens::keys::SigningAlg;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // `/new` before `/{id}`: the first matching resource wins.
    cfg.route("/admin/clients", web::get().to(list))
        .service(web::resource("/admin/clients/new").route(web::get().to(new_form)).route(web::post().to(create)))
        .service(web::resource("/admin/clients/{id}").route(web::get().to(edit_form)).route(web::post().to(update)))
        .route("/admin/clients/{id}/delete", web::post().to(delete))
        .route("/admin/clients/{id}/rotate-secret", web::post().to(rotate_secret));
}

const NOTICES: [(&str, &str); 2] = [("deleted", "Client deleted."), ("saved", "Changes saved.")];

/// The grant types offered as checkboxes, with what each one is for.
const GRANTS: [(&str, &str); 5] = [
    ("authorization_code", "Authorization code (users sign in)"),
    ("refresh_token", "Refresh token (with offline_access)"),
    ("client_credentials", "Client credentials (machine to machine)"),
    (
        crate::registry::client::TOKEN_EXCHANGE_GRANT,
        "Token exchange (an API's introspection client calling another API on its user's behalf, RFC 8693)",
    ),
    ("urn:ietf:params:oauth:grant-type:device_code", "Device code (CLIs and TVs: users approve on another screen)"),
];

const AUTH_METHODS: [(&str, &str); 5] = [
    ("client_secret_basic", "client_secret_basic: confidential, secret in HTTP Basic"),
    ("client_secret_post", "client_secret_post: confidential, secret in the form body"),
    ("private_key_jwt", "private_key_jwt: confidential, a JWT signed with the client's key (RFC 7523)"),
    ("none", "none: public client (browser or native app, PKCE)"),
    // client_secret_jwt
    (
        "client_secret_jwt",
        "client_secret_jwt: confidential, a JWT MACed with the client's secret (switching to it makes a new secret)",
    ),
];

struct Row {
    name: String,
    client_id: String,
    href: String,
    kind: &'static str,
    redirect_uris: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin/clients.html")]
struct ListPage {
    chrome: Chrome,
    notice: Option<&'static str>,
    clients: Vec<Row>,
}

async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    done: web::Query<Done>,
) -> Result<HttpResponse, AdminError> {
    let admin = require_admin(&req, &state).await?;
    let clients = state
        .store
        .list_clients()
        .await?
        .into_iter()
        .map(|c| Row {
            href: format!("/admin/clients/{}", form::segment(&c.client_id)),
            kind: c.client_type.as_str(),
            redirect_uris: c.redirect_uris.iter().map(|u| u.as_str().to_owned()).collect(),
            name: c.name,
            client_id: c.client_id,
        })
        .collect();
    let page = ListPage { chrome: admin.chrome(&state, "clients"), notice: done.notice(&NOTICES), clients };
    Ok(admin.page(StatusCode::OK, &page))
}

/// The form's fields as typed (kept as they are when the form comes back with errors).
struct Values {
    client_id: String,
    client_name: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    grant_types: Vec<String>,
    scope: String,
    default_api: String,
    token_endpoint_auth_method: String,
    require_pkce: bool,
    first_party: bool,
    id_token_signed_response_alg: String,
    id_token_claims: String,
    refresh_token_ttl: String,
    refresh_token_idle_ttl: String,
    /// The JWK Set as JSON text, the jwks_uri, the assertion algorithm ("" = any).
    jwks: String,
    jwks_uri: String,
    token_endpoint_auth_signing_alg: String,
    backchannel_logout_uri: String,
    backchannel_logout_session_required: bool,
    frontchannel_logout_uri: String,
    frontchannel_logout_session_required: bool,
    // Pairwise subjects.
    subject_type: String,
    sector_identifier_uri: String,
    // Request objects: one URI a line; the algorithm ("" = any).
    request_uris: String,
    request_object_signing_alg: String,
    // Signed userinfo and display metadata ("" = unset).
    userinfo_signed_response_alg: String,
    logo_uri: String,
    client_uri: String,
    policy_uri: String,
    tos_uri: String,
    // Pushed authorization requests and refresh token reuse.
    require_pushed_authorization_requests: bool,
    refresh_token_reuse_interval: String,
    // DPoP (RFC 9449 §5.2).
    dpop_bound_access_tokens: bool,
}

impl Values {
    /// What a new client's form starts with: the spec's defaults.
    fn defaults() -> Self {
        Self {
            client_id: String::new(),
            client_name: String::new(),
            redirect_uris: String::new(),
            post_logout_redirect_uris: String::new(),
            grant_types: vec![GrantType::AuthorizationCode.as_str().into()],
            scope: "openid profile email".into(),
            default_api: String::new(),
            token_endpoint_auth_method: AuthMethod::ClientSecretBasic.as_str().into(),
            require_pkce: true,
            first_party: false,
            id_token_signed_response_alg: SigningAlg::RS256.as_str().into(),
            id_token_claims: IdTokenClaimsPolicy::All.as_str().into(),
            refresh_token_ttl: DEFAULT_REFRESH_TOKEN_TTL.to_string(),
            refresh_token_idle_ttl: DEFAULT_REFRESH_TOKEN_IDLE_TTL.to_string(),
            jwks: String::new(),
            jwks_uri: String::new(),
            token_endpoint_auth_signing_alg: String::new(),
            backchannel_logout_uri: String::new(),
            backchannel_logout_session_required: false,
            frontchannel_logout_uri: String::new(),
            frontchannel_logout_session_required: false,
            subject_type: SubjectType::Public.as_str().into(),
            sector_identifier_uri: String::new(),
            request_uris: String::new(),
            request_object_signing_alg: String::new(),
            // Signed userinfo and display metadata.
            userinfo_signed_response_alg: String::new(),
            logo_uri: String::new(),
            client_uri: String::new(),
            policy_uri: String::new(),
            tos_uri: String::new(),
            require_pushed_authorization_requests: false,
            refresh_token_reuse_interval: "0".into(),
            dpop_bound_access_tokens: false,
        }
    }

    fn of(client: &Client) -> Self {
        let lines = |uris: &[crate::oauth::redirect_uri::RedirectUri]| {
            uris.iter().map(|u| u.as_str()).collect::<Vec<_>>().join("\n")
        };
        Self {
            client_id: client.client_id.clone(),
            client_name: client.name.clone(),
            redirect_uris: lines(&client.redirect_uris),
            post_logout_redirect_uris: lines(&client.post_logout_redirect_uris),
            grant_types: client.grant_types.iter().map(|g| g.as_str().to_owned()).collect(),
            scope: client.scope.to_string(),
            default_api: client.default_api.clone().unwrap_or_default(),
            token_endpoint_auth_method: client.auth_method.as_str().into(),
            require_pkce: client.require_pkce,
            first_party: client.first_party,
            id_token_signed_response_alg: client.id_token_alg.as_str().into(),
            id_token_claims: client.id_token_claims.as_str().into(),
            refresh_token_ttl: client.refresh_token_ttl.to_string(),
            refresh_token_idle_ttl: client.refresh_token_idle_ttl.to_string(),
            jwks: client
                .jwks
                .as_ref()
                .and_then(|j| serde_json::to_string_pretty(&j.to_value()).ok())
                .unwrap_or_default(),
            jwks_uri: client.jwks_uri.clone().unwrap_or_default(),
            token_endpoint_auth_signing_alg: client.assertion_alg.map(|a| a.as_str().to_owned()).unwrap_or_default(),
            backchannel_logout_uri: client.backchannel_logout_uri.as_ref().map(ToString::to_string).unwrap_or_default(),
            backchannel_logout_session_required: client.backchannel_logout_session_required,
            frontchannel_logout_uri: client
                .frontchannel_logout_uri
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            frontchannel_logout_session_required: client.frontchannel_logout_session_required,
            subject_type: client.subject_type.as_str().into(),
            sector_identifier_uri: client.sector_identifier_uri.as_ref().map(ToString::to_string).unwrap_or_default(),
            request_uris: client.request_uris.iter().map(|u| u.as_str()).collect::<Vec<_>>().join("\n"),
            request_object_signing_alg: client.request_object_alg.map(|a| a.as_str().to_owned()).unwrap_or_default(),
            // Signed userinfo and display metadata.
            userinfo_signed_response_alg: client.userinfo_alg.map(|a| a.as_str().to_owned()).unwrap_or_default(),
            logo_uri: client.logo_uri.as_ref().map(ToString::to_string).unwrap_or_default(),
            client_uri: client.client_uri.as_ref().map(ToString::to_string).unwrap_or_default(),
            policy_uri: client.policy_uri.as_ref().map(ToString::to_string).unwrap_or_default(),
            tos_uri: client.tos_uri.as_ref().map(ToString::to_string).unwrap_or_default(),
            require_pushed_authorization_requests: client.require_par,
            refresh_token_reuse_interval: client.refresh_token_reuse_interval.to_string(),
            dpop_bound_access_tokens: client.dpop_bound_access_tokens,
        }
    }

    fn submitted(fields: &Fields) -> Self {
        Self {
            client_id: fields.text("client_id"),
            client_name: fields.text("client_name"),
            redirect_uris: fields.text("redirect_uris"),
            post_logout_redirect_uris: fields.text("post_logout_redirect_uris"),
            grant_types: fields.all("grant_types"),
            scope: fields.text("scope"),
            default_api: fields.text("default_api"),
            token_endpoint_auth_method: fields.text("token_endpoint_auth_method"),
            require_pkce: fields.checked("require_pkce"),
            first_party: fields.checked("first_party"),
            id_token_signed_response_alg: fields.text("id_token_signed_response_alg"),
            id_token_claims: fields.text("id_token_claims"),
            refresh_token_ttl: fields.text("refresh_token_ttl"),
            refresh_token_idle_ttl: fields.text("refresh_token_idle_ttl"),
            jwks: fields.text("jwks"),
            jwks_uri: fields.text("jwks_uri"),
            token_endpoint_auth_signing_alg: fields.text("token_endpoint_auth_signing_alg"),
            backchannel_logout_uri: fields.text("backchannel_logout_uri"),
            backchannel_logout_session_required: fields.checked("backchannel_logout_session_required"),
            frontchannel_logout_uri: fields.text("frontchannel_logout_uri"),
            frontchannel_logout_session_required: fields.checked("frontchannel_logout_session_required"),
            subject_type: fields.text("subject_type"),
            sector_identifier_uri: fields.text("sector_identifier_uri"),
            request_uris: fields.text("request_uris"),
            request_object_signing_alg: fields.text("request_object_signing_alg"),
            // Signed userinfo and display metadata.
            userinfo_signed_response_alg: fields.text("userinfo_signed_response_alg"),
            logo_uri: fields.text("logo_uri"),
            client_uri: fields.text("client_uri"),
            policy_uri: fields.text("policy_uri"),
            tos_uri: fields.text("tos_uri"),
            require_pushed_authorization_requests: fields.checked("require_pushed_authorization_requests"),
            refresh_token_reuse_interval: fields.text("refresh_token_reuse_interval"),
            dpop_bound_access_tokens: fields.checked("dpop_bound_access_tokens"),
        }
    }

    /// The spec these values ask for; numbers that are not numbers go to `errors`.
    fn spec(&self, errors: &mut FieldErrors) -> ClientSpec {
        ClientSpec {
            client_id: Some(self.client_id.clone()),
            client_name: Some(self.client_name.clone()),
            client_secret: None,
            redirect_uris: form::lines(&self.redirect_uris),
            post_logout_redirect_uris: form::lines(&self.post_logout_redirect_uris),
            grant_types: self.grant_types.clone(),
            // An empty box means no scopes (the spec's default applies only when absent).
            scope: Some(self.scope.trim().to_owned()),
            token_endpoint_auth_method: form::non_blank(&self.token_endpoint_auth_method),
            default_api: form::non_blank(&self.default_api),
            first_party: Some(self.first_party),
            require_pkce: Some(self.require_pkce),
            id_token_signed_response_alg: form::non_blank(&self.id_token_signed_response_alg),
            id_token_claims: form::non_blank(&self.id_token_claims),
            refresh_token_ttl: form::seconds(&self.refresh_token_ttl, "refresh_token_ttl", errors),
            refresh_token_idle_ttl: form::seconds(&self.refresh_token_idle_ttl, "refresh_token_idle_ttl", errors),
            // ClientSpec reads a JWK Set given as JSON text.
            jwks: form::non_blank(&self.jwks).map(serde_json::Value::String),
            jwks_uri: form::non_blank(&self.jwks_uri),
            token_endpoint_auth_signing_alg: form::non_blank(&self.token_endpoint_auth_signing_alg),
            backchannel_logout_uri: form::non_blank(&self.backchannel_logout_uri),
            backchannel_logout_session_required: Some(self.backchannel_logout_session_required),
            frontchannel_logout_uri: form::non_blank(&self.frontchannel_logout_uri),
            frontchannel_logout_session_required: Some(self.frontchannel_logout_session_required),
            subject_type: form::non_blank(&self.subject_type),
            sector_identifier_uri: form::non_blank(&self.sector_identifier_uri),
            request_uris: form::lines(&self.request_uris),
            request_object_signing_alg: form::non_blank(&self.request_object_signing_alg),
            // Signed userinfo and display metadata.
            userinfo_signed_response_alg: form::non_blank(&self.userinfo_signed_response_alg),
            logo_uri: form::non_blank(&self.logo_uri),
            client_uri: form::non_blank(&self.client_uri),
            policy_uri: form::non_blank(&self.policy_uri),
            tos_uri: form::non_blank(&self.tos_uri),
            require_pushed_authorization_requests: Some(self.require_pushed_authorization_requests),
            refresh_token_reuse_interval: form::seconds(
                &self.refresh_token_reuse_interval,
                "refresh_token_reuse_interval",
                errors,
            ),
            dpop_bound_access_tokens: Some(self.dpop_bound_access_tokens),
        }
    }

    fn has_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }
}

/// What the edit form knows beyond the fields.
struct Editing {
    href: String,
    confidential: bool,
    created: String,
    updated: String,
    /// The latest back-channel logout deliveries to the client.
    deliveries: Vec<DeliveryRow>,
    /// client_secret_jwt: its secret is also kept sealed, not only as a hash.
    secret_jwt: bool,
}

/// One back-channel logout delivery, as the client's page lists it.
struct DeliveryRow {
    when: String,
    sid: String,
    attempts: i64,
    delivered: bool,
    outcome: String,
}

/// How many deliveries the client's page lists.
const DELIVERIES_SHOWN: i64 = 10;

#[derive(Template)]
#[template(path = "admin/client_form.html")]
struct FormPage {
    chrome: Chrome,
    notice: Option<&'static str>,
    values: Values,
    errors: FieldErrors,
    /// (identifier, name) of every registered API, for the default API.
    apis: Vec<(String, String)>,
    editing: Option<Editing>,
}

impl FormPage {
    fn grants(&self) -> &'static [(&'static str, &'static str)] {
        &GRANTS
    }

    fn auth_methods(&self) -> &'static [(&'static str, &'static str)] {
        &AUTH_METHODS
    }

    fn algs(&self) -> [&'static str; 2] {
        SigningAlg::ALL.map(SigningAlg::as_str)
    }

    /// private_key_jwt's algorithms, then client_secret_jwt's.
    fn assertion_algs(&self) -> Vec<&'static str> {
        AssertionAlg::ALL.map(AssertionAlg::as_str).into_iter().chain(MacAlg::ALL.map(MacAlg::as_str)).collect()
    }
}

async fn form_page(
    admin: &Admin,
    state: &AppState,
    values: Values,
    errors: FieldErrors,
    existing: Option<&Client>,
    notice: Option<&'static str>,
) -> Result<FormPage, AdminError> {
    let apis = state.store.list_apis().await?.into_iter().map(|a| (a.identifier, a.name)).collect();
    let deliveries = match existing {
        Some(c) => state
            .store
            .backchannel_deliveries(&c.client_id, DELIVERIES_SHOWN)
            .await?
            .into_iter()
            .map(|d| DeliveryRow {
                when: when(d.created_at),
                sid: d.sid,
                attempts: d.attempts,
                delivered: d.delivered,
                outcome: d.outcome,
            })
            .collect(),
        None => Vec::new(),
    };
    let editing = existing.map(|c| Editing {
        href: format!("/admin/clients/{}", form::segment(&c.client_id)),
        // Only a client that authenticates with a secret has one to rotate.
        confidential: c.client_type == ClientType::Confidential && c.auth_method.uses_secret(),
        created: when(c.created_at),
        updated: when(c.updated_at),
        deliveries,
        secret_jwt: c.auth_method == AuthMethod::ClientSecretJwt,
    });
    Ok(FormPage { chrome: admin.chrome(state, "clients"), notice, values, errors, apis, editing })
}

async fn new_form(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    let admin = require_admin(&req, &state).await?;
    let page = form_page(&admin, &state, Values::defaults(), FieldErrors::default(), None, None).await?;
    Ok(admin.page(StatusCode::OK, &page))
}

/// The page that shows a client's id and secret, once.
#[derive(Template)]
#[template(path = "admin/client_secret.html")]
struct SecretPage {
    chrome: Chrome,
    heading: &'static str,
    name: String,
    client_id: String,
    href: String,
    secret: Option<String>,
    /// The secret is also kept sealed (client_secret_jwt), not only as a hash.
    sealed: bool,
}

async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    submitted: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AdminError> {
    let (admin, fields) = require_admin_form(&req, &state, submitted).await?;
    let values = Values::submitted(&fields);
    let mut errors = FieldErrors::default();
    let spec = values.spec(&mut errors);
    let outcome = if errors.is_empty() {
        registry::create_client_with(&state.store, spec, registry::FetchPolicy::for_dev_mode(state.config.dev_login))
            .await
    } else {
        // Report the spec's own complaints too, so that one submission shows them all.
        errors.0.extend(spec.validate().err().map(|e| e.0).unwrap_or_default());
        Err(errors.into())
    };
    let new = match outcome {
        Ok(new) => new,
        Err(e) => {
            let errors = form::field_errors(e, "client_id")?;
            let page = form_page(&admin, &state, values, errors, None, None).await?;
            return Ok(admin.page(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
    };
    let client = new.client;
    let detail = format!("{} ({})", client.name, client.client_type.as_str());
    state.store.audit(admin.actor(), "client.create", &client.client_id, &detail).await?;
    let page = SecretPage {
        chrome: admin.chrome(&state, "clients"),
        heading: "Client registered",
        href: format!("/admin/clients/{}", form::segment(&client.client_id)),
        sealed: client.auth_method == AuthMethod::ClientSecretJwt,
        name: client.name,
        client_id: client.client_id,
        secret: new.secret,
    };
    Ok(admin.page(StatusCode::OK, &page))
}

async fn load(state: &AppState, client_id: &str) -> Result<Client, AdminError> {
    state.store.client(client_id).await?.ok_or_else(|| AdminError::NotFound(format!("client {client_id:?}")))
}

async fn edit_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    done: web::Query<Done>,
) -> Result<HttpResponse, AdminError> {
    let admin = require_admin(&req, &state).await?;
    let client = load(&state, &path).await?;
    let notice = done.notice(&NOTICES);
    let page = form_page(&admin, &state, Values::of(&client), FieldErrors::default(), Some(&client), notice).await?;
    Ok(admin.page(StatusCode::OK, &page))
}

async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    submitted: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AdminError> {
    let (admin, fields) = require_admin_form(&req, &state, submitted).await?;
    let existing = load(&state, &path).await?;
    let mut values = Values::submitted(&fields);
    values.client_id = existing.client_id.clone();
    let mut errors = FieldErrors::default();
    let becomes_public = AuthMethod::parse(&values.token_endpoint_auth_method) == Some(AuthMethod::None);
    if existing.client_type == ClientType::Confidential && becomes_public {
        // Its secret would stay valid (and unused): a public client is a new registration.
        errors.add(
            "token_endpoint_auth_method",
            "a confidential client cannot become public: register a new public client instead",
        );
    }
    let spec = values.spec(&mut errors);
    let outcome = match spec.validate() {
        Ok(new) if errors.is_empty() => {
            let mut client = new.client;
            client.secret_hash.clone_from(&existing.secret_hash);
            client.created_at = existing.created_at;
            let fetch = registry::FetchPolicy::for_dev_mode(state.config.dev_login);
            registry::update_client_with(&state.store, &client, fetch).await.map(|()| client)
        }
        Ok(_) => Err(errors.into()),
        Err(more) => {
            errors.0.extend(more.0);
            Err(errors.into())
        }
    };
    let client = match outcome {
        Ok(client) => client,
        Err(e) => {
            let errors = form::field_errors(e, "client_id")?;
            let page = form_page(&admin, &state, values, errors, Some(&existing), None).await?;
            return Ok(admin.page(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
    };
    state.store.audit(admin.actor(), "client.update", &client.client_id, &client.name).await?;
    let href = format!("/admin/clients/{}", form::segment(&client.client_id));
    if client.needs_new_secret(&existing) {
        // Now confidential, or now client_secret_jwt (the old secret was kept as a hash
        // only, which cannot key a MAC): a new secret, shown once like a new client's.
        let secret = registry::rotate_client_secret(&state.store, &client.client_id).await.map_err(form::failure)?;
        let (heading, detail) = match existing.client_type {
            ClientType::Public => ("Client is now confidential", "now confidential"),
            ClientType::Confidential => (
                "Client now uses client_secret_jwt: it has a new secret",
                "now client_secret_jwt: the old secret was kept as a hash only",
            ),
        };
        state.store.audit(admin.actor(), "client.rotate_secret", &client.client_id, detail).await?;
        let page = SecretPage {
            chrome: admin.chrome(&state, "clients"),
            heading,
            sealed: client.auth_method == AuthMethod::ClientSecretJwt,
            name: client.name,
            client_id: client.client_id,
            href,
            secret: Some(secret),
        };
        return Ok(admin.page(StatusCode::OK, &page));
    }
    Ok(form::see_other(&format!("{href}?done=saved")))
}

async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    submitted: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AdminError> {
    let (admin, _) = require_admin_form(&req, &state, submitted).await?;
    let client = load(&state, &path).await?;
    if !state.store.delete_client(&client.client_id).await? {
        return Err(AdminError::NotFound(format!("client {:?}", client.client_id)));
    }
    state.store.audit(admin.actor(), "client.delete", &client.client_id, &client.name).await?;
    Ok(form::see_other("/admin/clients?done=deleted"))
}

async fn rotate_secret(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    submitted: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AdminError> {
    let (admin, _) = require_admin_form(&req, &state, submitted).await?;
    let client = load(&state, &path).await?;
    let secret = registry::rotate_client_secret(&state.store, &client.client_id).await.map_err(form::failure)?;
    state.store.audit(admin.actor(), "client.rotate_secret", &client.client_id, "old secret stops working").await?;
    let page = SecretPage {
        chrome: admin.chrome(&state, "clients"),
        heading: "New client secret",
        sealed: client.auth_method == AuthMethod::ClientSecretJwt,
        href: format!("/admin/clients/{}", form::segment(&client.client_id)),
        name: client.name,
        client_id: client.client_id,
        secret: Some(secret),
    };
    Ok(admin.page(StatusCode::OK, &page))
}
