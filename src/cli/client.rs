//! `lanyard client …`: add, list, show, remove, rotate-secret. A client secret is printed
//! once, when it is created or rotated: Lanyard keeps only its SHA-256 (and, for a
//! client_secret_jwt client, a copy sealed under the key-encryption key).

use clap::{Args, Subcommand};

use super::output::{print_details, print_json, print_table, yes_no};
use crate::config::Config;
use crate::oauth::redirect_uri::RedirectUri;
use crate::oauth::register::ClientMetadata;
use crate::registry::{
    self, RegistryError,
    client::{Client, ClientSpec},
};
use crate::store::Store;

const SHOWN_ONCE: &str = "Store the client_secret now: Lanyard keeps only its hash and cannot show it again.";
const SHOWN_ONCE_SEALED: &str = "Store the client_secret now: Lanyard keeps it encrypted, only to check the MAC of \
    the client's assertions (client_secret_jwt), and never shows it again.";

/// What to say under a secret just printed.
fn shown_once(client_secret_jwt: bool) -> &'static str {
    if client_secret_jwt { SHOWN_ONCE_SEALED } else { SHOWN_ONCE }
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; a confidential client's secret is printed once.
    Add(Box<AddClient>),
    /// List every client (never their secrets).
    List {
        /// Print a JSON array of clients instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one client's registration (never its secret).
    Show {
        /// The client to show.
        client_id: String,
        /// Print the client as one JSON object (RFC 7591 names) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete a client with its consents, codes and grants (its tokens are revoked).
    Remove {
        /// The client to delete.
        client_id: String,
    },
    /// Give a confidential client a new generated secret (printed once); the old one
    /// stops working at once. A client_secret_jwt client's is sealed anew.
    RotateSecret {
        /// The confidential client whose secret changes.
        client_id: String,
        /// Print {"client_id": …, "client_secret": …} instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct AddClient {
    /// The client_id [default: a random 128-bit identifier].
    client_id: Option<String>,
    /// Display name, shown on the consent page [default: the client_id].
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// A redirect URI: https, http on localhost/loopback only, or a private-use scheme
    /// such as com.example.app:/cb (repeat for several; needed for authorization_code).
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser afterwards (repeat for several).
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    post_logout_redirect_uris: Vec<String>,
    /// Back-Channel Logout 1.0: where a logout token is POSTed when a session the client
    /// took part in ends (absolute http(s) URL, no fragment).
    #[arg(long, value_name = "URI")]
    backchannel_logout_uri: Option<String>,
    /// Send the client `sid` in logout tokens (Lanyard always does; this records that the
    /// client relies on it).
    #[arg(long)]
    backchannel_logout_session_required: bool,
    /// Front-Channel Logout 1.0: loaded in an iframe of the "signed out" page.
    #[arg(long, value_name = "URI")]
    frontchannel_logout_uri: Option<String>,
    /// Add `iss` and `sid` to the front-channel logout URI.
    #[arg(long)]
    frontchannel_logout_session_required: bool,
    /// Scopes the client may request, space-separated: OpenID Connect scopes (openid
    /// profile email address phone offline_access) and scopes of registered APIs
    /// [default: openid]. May be repeated; the values are joined.
    #[arg(long = "scope", value_name = "SCOPES")]
    scopes: Vec<String>,
    /// Identifier of the registered API that access tokens are for when a request names
    /// no resource.
    #[arg(long, value_name = "URI")]
    default_api: Option<String>,
    /// A public client (browser or native app that cannot keep a secret): no secret,
    /// token_endpoint_auth_method "none", PKCE always required. Default: confidential,
    /// authenticating with client_secret_basic.
    #[arg(long)]
    public: bool,
    /// A grant the client may use: authorization_code, refresh_token, client_credentials
    /// or an RFC URN grant: urn:ietf:params:oauth:grant-type:device_code (CLIs and TVs,
    /// RFC 8628) or urn:ietf:params:oauth:grant-type:token-exchange (an API's introspection
    /// client exchanging its users' tokens, RFC 8693) (repeat for several) [default:
    /// authorization_code].
    #[arg(long = "grant", visible_alias = "grant-type", value_name = "GRANT")]
    grants: Vec<String>,
    /// A first-party client: users are not asked for consent.
    #[arg(long)]
    first_party: bool,
    /// Do not require PKCE from this confidential client (public clients always need it).
    #[arg(long)]
    no_pkce: bool,
    /// Algorithm of the id_tokens issued to the client: RS256 or ES256 [default: RS256].
    #[arg(long, value_name = "ALG")]
    id_token_alg: Option<String>,
    /// A file holding the client's JWK Set (public keys only): the client then
    /// authenticates with private_key_jwt (RFC 7523) instead of a secret.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["jwks_uri", "public", "secret"])]
    jwks_file: Option<std::path::PathBuf>,
    /// Where the client publishes its JWK Set (https): the client then authenticates with
    /// private_key_jwt, its keys fetched and cached by Lanyard.
    #[arg(long, value_name = "URI", conflicts_with_all = ["public", "secret"])]
    jwks_uri: Option<String>,
    /// The one algorithm the client's assertions may use: RS256, PS256, ES256 or EdDSA
    /// for private_key_jwt, HS256, HS384 or HS512 for client_secret_jwt [default: any of
    /// its method's].
    #[arg(long, value_name = "ALG")]
    auth_signing_alg: Option<String>,
    /// Profile claims requested by scope: in the id_token too (`all`) or at userinfo only
    /// (`minimal`, OIDC Core §5.4) [default: all].
    #[arg(long, value_name = "all|minimal")]
    id_token_claims: Option<String>,
    // Pairwise subjects.
    /// The `sub` the client sees: `public` (the user's id, the same for every client) or
    /// `pairwise` (one per sector, OIDC Core §8.1) [default: public].
    #[arg(long, value_name = "public|pairwise")]
    subject_type: Option<String>,
    /// An https URL serving a JSON array of every redirect URI of the client; its host is
    /// the pairwise sector (needed when the redirect URIs are on several hosts). Fetched now.
    #[arg(long, value_name = "URI")]
    sector_identifier_uri: Option<String>,
    /// Authenticate with client_secret_jwt (RFC 7523, OIDC Core §9): JWT assertions
    /// MACed with the client's secret (HS256, HS384 or HS512), which Lanyard keeps
    /// encrypted with the key-encryption key besides its hash.
    #[arg(long, conflicts_with_all = ["jwks_file", "jwks_uri", "public"])]
    client_secret_jwt: bool,
    /// Use this fixed secret instead of a generated one (for development only: it ends
    /// up in shell history and process listings).
    #[arg(long, value_name = "SECRET")]
    secret: Option<String>,
    /// Print the created client as one JSON object (RFC 7591 names) instead of text.
    #[arg(long)]
    json: bool,
    // Request objects:
    /// A URL the client may pass as request_uri (OIDC Core §6.2): https, or http on
    /// loopback in dev mode; repeat for several. Its request objects are signed with the
    /// client's keys (--jwks-file or --jwks-uri).
    #[arg(long = "request-uri", value_name = "URI")]
    request_uris: Vec<String>,
    /// The one algorithm the client's request objects may be signed with: RS256, PS256,
    /// ES256 or EdDSA [default: any of them].
    #[arg(long, value_name = "ALG")]
    request_object_alg: Option<String>,
    // Signed userinfo and display metadata.
    /// Sign userinfo responses (a JWT, OIDC Core §5.3.2): RS256 or ES256 [default: plain JSON].
    #[arg(long, value_name = "ALG")]
    userinfo_alg: Option<String>,
    /// The client's logo, shown on the sign-in and consent pages (https URL).
    #[arg(long, value_name = "URL")]
    logo_uri: Option<String>,
    /// The client's home page (https URL).
    #[arg(long, value_name = "URL")]
    client_uri: Option<String>,
    /// The client's privacy policy, linked from the sign-in and consent pages (https URL).
    #[arg(long, value_name = "URL")]
    policy_uri: Option<String>,
    /// The client's terms of service, linked from the sign-in and consent pages (https URL).
    #[arg(long, value_name = "URL")]
    tos_uri: Option<String>,
    // Pushed authorization requests and refresh token reuse.
    /// The client must push its authorization requests (RFC 9126): /authorize then takes
    /// only a request_uri obtained from /par.
    #[arg(long)]
    require_par: bool,
    /// Seconds (0 to 300) during which the refresh token just rotated away, presented
    /// again by this client, is answered with the same new refresh token instead of
    /// revoking the grant (parallel tabs, retries) [default: 0, strict rotation].
    #[arg(long, value_name = "SECONDS")]
    refresh_token_reuse_interval: Option<i64>,
    /// The client always uses DPoP (RFC 9449 §5.2, `dpop_bound_access_tokens`): its token
    /// requests without a DPoP proof are refused.
    #[arg(long)]
    dpop_bound_access_tokens: bool,
}

impl ClientCommand {
    /// `config`: dev mode lets a sector document be fetched from loopback.
    pub async fn run(self, config: &Config, store: &Store) -> anyhow::Result<()> {
        match self {
            Self::Add(add) => add.run(store, registry::FetchPolicy::for_dev_mode(config.dev_login)).await,
            Self::List { json } => list(store, json).await,
            Self::Show { client_id, json } => {
                let client = store
                    .client(&client_id)
                    .await?
                    .ok_or_else(|| RegistryError::NotFound(format!("client {client_id:?}")))?;
                if json {
                    return print_json(&ClientMetadata::new(&client, None));
                }
                print_client(&format!("client {}", client.client_id), &client);
                Ok(())
            }
            Self::Remove { client_id } => {
                if !store.delete_client(&client_id).await? {
                    return Err(RegistryError::NotFound(format!("client {client_id:?}")).into());
                }
                println!("removed client {client_id}");
                Ok(())
            }
            Self::RotateSecret { client_id, json } => {
                let secret = registry::rotate_client_secret(store, &client_id).await?;
                let sealed = store.client(&client_id).await?.is_some_and(|c| c.secret_sealed.is_some());
                if json {
                    return print_json(&serde_json::json!({
                        "client_id": client_id,
                        "client_secret": secret,
                    }));
                }
                println!("new secret of client {client_id}");
                println!("  client_secret: {secret}");
                println!("{}", shown_once(sealed));
                Ok(())
            }
        }
    }
}

impl AddClient {
    async fn run(self, store: &Store, fetch: registry::FetchPolicy) -> anyhow::Result<()> {
        let jwks = match &self.jwks_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("cannot read the JWK Set {}: {e}", path.display()))?;
                Some(
                    serde_json::from_str::<serde_json::Value>(&text)
                        .map_err(|e| anyhow::anyhow!("the JWK Set {} is not JSON: {e}", path.display()))?,
                )
            }
            None => None,
        };
        let auth_method = if self.public {
            Some("none".to_owned())
        } else if jwks.is_some() || self.jwks_uri.is_some() {
            Some("private_key_jwt".to_owned())
        } else if self.client_secret_jwt {
            Some("client_secret_jwt".to_owned())
        } else {
            None
        };
        let no_scope = self.scopes.is_empty();
        let spec = ClientSpec {
            client_id: self.client_id,
            client_name: self.name,
            client_secret: self.secret,
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            grant_types: self.grants,
            scope: (!self.scopes.is_empty()).then(|| self.scopes.join(" ")),
            token_endpoint_auth_method: auth_method,
            default_api: self.default_api,
            first_party: self.first_party.then_some(true),
            require_pkce: self.no_pkce.then_some(false),
            id_token_signed_response_alg: self.id_token_alg,
            id_token_claims: self.id_token_claims,
            refresh_token_ttl: None,
            refresh_token_idle_ttl: None,
            jwks,
            jwks_uri: self.jwks_uri,
            token_endpoint_auth_signing_alg: self.auth_signing_alg,
            backchannel_logout_uri: self.backchannel_logout_uri,
            backchannel_logout_session_required: self.backchannel_logout_session_required.then_some(true),
            frontchannel_logout_uri: self.frontchannel_logout_uri,
            frontchannel_logout_session_required: self.frontchannel_logout_session_required.then_some(true),
            subject_type: self.subject_type,
            sector_identifier_uri: self.sector_identifier_uri,
            request_uris: self.request_uris,
            request_object_signing_alg: self.request_object_alg,
            // Signed userinfo and display metadata.
            userinfo_signed_response_alg: self.userinfo_alg,
            logo_uri: self.logo_uri,
            client_uri: self.client_uri,
            policy_uri: self.policy_uri,
            tos_uri: self.tos_uri,
            require_pushed_authorization_requests: self.require_par.then_some(true),
            refresh_token_reuse_interval: self.refresh_token_reuse_interval,
            dpop_bound_access_tokens: self.dpop_bound_access_tokens.then_some(true),
        };
        let new = registry::create_client_with(store, spec, fetch).await?;
        if no_scope {
            // On stderr, so that --json output stays one JSON document.
            eprintln!(
                "warning: no --scope given: client {} may request only \"openid\"; other scopes are refused \
                 with invalid_scope (e.g. add --scope \"openid profile email\")",
                new.client.client_id
            );
        }
        if self.json {
            return print_json(&ClientMetadata::new(&new.client, new.secret.as_deref()));
        }
        let client = &new.client;
        print_client(&format!("created {} client {}", client.client_type.as_str(), client.client_id), client);
        if let Some(secret) = &new.secret {
            println!("  client_secret: {secret}");
            println!("{}", shown_once(client.secret_sealed.is_some()));
        }
        Ok(())
    }
}

/// A client's registration as `key: value` lines (never its secret or hash).
fn print_client(heading: &str, client: &Client) {
    let join = |uris: &[RedirectUri]| uris.iter().map(RedirectUri::as_str).collect::<Vec<_>>().join(" ");
    print_details(
        heading,
        &[
            ("client_name", client.name.clone()),
            ("client_type", client.client_type.as_str().to_owned()),
            ("token_endpoint_auth_method", client.auth_method.as_str().to_owned()),
            ("redirect_uris", join(&client.redirect_uris)),
            ("post_logout_redirect_uris", join(&client.post_logout_redirect_uris)),
            ("grant_types", grant_names(client)),
            ("scope", client.scope.to_string()),
            ("default_api", client.default_api.clone().unwrap_or_default()),
            ("first_party", yes_no(client.first_party)),
            ("require_pkce", yes_no(client.require_pkce)),
            ("id_token_signed_response_alg", client.id_token_alg.to_string()),
            ("jwks", client.jwks.as_ref().map(|j| j.to_value().to_string()).unwrap_or_default()),
            ("jwks_uri", client.jwks_uri.clone().unwrap_or_default()),
            (
                "token_endpoint_auth_signing_alg",
                client.assertion_alg.map(|a| a.as_str().to_owned()).unwrap_or_default(),
            ),
            (
                "backchannel_logout_uri",
                client.backchannel_logout_uri.as_ref().map(ToString::to_string).unwrap_or_default(),
            ),
            ("backchannel_logout_session_required", yes_no(client.backchannel_logout_session_required)),
            (
                "frontchannel_logout_uri",
                client.frontchannel_logout_uri.as_ref().map(ToString::to_string).unwrap_or_default(),
            ),
            ("frontchannel_logout_session_required", yes_no(client.frontchannel_logout_session_required)),
            ("id_token_claims", client.id_token_claims.as_str().to_owned()),
            ("subject_type", client.subject_type.as_str().to_owned()),
            (
                "sector_identifier_uri",
                client.sector_identifier_uri.as_ref().map(ToString::to_string).unwrap_or_default(),
            ),
            ("request_uris", client.request_uris.iter().map(|u| u.as_str()).collect::<Vec<_>>().join(" ")),
            (
                "request_object_signing_alg",
                client.request_object_alg.map(|a| a.as_str().to_owned()).unwrap_or_default(),
            ),
            // Signed userinfo and display metadata.
            ("userinfo_signed_response_alg", client.userinfo_alg.map(|a| a.as_str().to_owned()).unwrap_or_default()),
            ("logo_uri", client.logo_uri.as_ref().map(ToString::to_string).unwrap_or_default()),
            ("client_uri", client.client_uri.as_ref().map(ToString::to_string).unwrap_or_default()),
            ("policy_uri", client.policy_uri.as_ref().map(ToString::to_string).unwrap_or_default()),
            ("tos_uri", client.tos_uri.as_ref().map(ToString::to_string).unwrap_or_default()),
            ("require_pushed_authorization_requests", yes_no(client.require_par)),
            ("refresh_token_reuse_interval", client.refresh_token_reuse_interval.to_string()),
            ("dpop_bound_access_tokens", yes_no(client.dpop_bound_access_tokens)),
        ],
    );
}

fn grant_names(client: &Client) -> String {
    client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(" ")
}

async fn list(store: &Store, json: bool) -> anyhow::Result<()> {
    let clients = store.list_clients().await?;
    if json {
        let views: Vec<_> = clients.iter().map(|c| ClientMetadata::new(c, None)).collect();
        return print_json(&views);
    }
    let rows: Vec<[String; 5]> = clients
        .iter()
        .map(|c| {
            [
                c.client_id.clone(),
                c.name.clone(),
                c.client_type.as_str().to_owned(),
                grant_names(c),
                c.scope.to_string(),
            ]
        })
        .collect();
    print_table(["client_id", "name", "type", "grant_types", "scope"], &rows, "no clients");
    Ok(())
}
