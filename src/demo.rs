//! The first run that shows something: on a database without clients (and without a seed
//! file), a demo API, client and user, and instructions to try a sign-in with them.

use crate::config::Config;
use crate::registry::api::{ApiSpec, ScopeSpec};
use crate::registry::client::ClientSpec;
use crate::registry::user::UserSpec;
use crate::registry::{self, RegistryError};
use crate::store::Store;

pub const DEMO_API: &str = "https://api.example.test/demo";
pub const DEMO_CLIENT: &str = "demo";
pub const DEMO_USER: &str = "demo";
pub const DEMO_REDIRECT_URI: &str = "http://localhost:9999/callback";
/// RFC 7636 Appendix B: a PKCE pair anyone can paste.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// Creates the demo entries when the database has no clients; prints how to use them.
pub async fn create_if_empty(store: &Store, config: &Config) -> Result<(), RegistryError> {
    if store.count_clients().await? > 0 {
        return Ok(());
    }
    let api = ApiSpec {
        identifier: DEMO_API.into(),
        name: "Demo API".into(),
        scopes: vec![ScopeSpec::Name("read:demo".into()), ScopeSpec::Name("write:demo".into())],
        ..Default::default()
    };
    match registry::create_api(store, api).await {
        Ok(_) | Err(RegistryError::Conflict(_)) => {}
        Err(e) => return Err(e),
    }
    let client = ClientSpec {
        client_id: Some(DEMO_CLIENT.into()),
        client_name: Some("Demo app".into()),
        redirect_uris: vec![DEMO_REDIRECT_URI.into()],
        post_logout_redirect_uris: vec!["http://localhost:9999/".into()],
        grant_types: vec!["authorization_code".into(), "refresh_token".into(), "client_credentials".into()],
        scope: Some("openid profile email offline_access read:demo write:demo".into()),
        default_api: Some(DEMO_API.into()),
        ..Default::default()
    };
    let client = match registry::create_client(store, client).await {
        Ok(new) => new,
        // Another replica created it at the same moment.
        Err(RegistryError::Conflict(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    let password = crate::crypto::random_token(12);
    let mut claims = serde_json::Map::new();
    claims.insert("name".into(), "Demo User".into());
    claims.insert("email".into(), "demo@example.test".into());
    claims.insert("email_verified".into(), true.into());
    let user = UserSpec { username: DEMO_USER.into(), password: password.clone(), is_admin: false, claims };
    let user_created = match registry::create_user(store, user).await {
        Ok(_) => true,
        Err(RegistryError::Conflict(_)) => false,
        Err(e) => return Err(e),
    };
    let secret = client.secret.unwrap_or_default();
    let issuer = config.issuer.as_str();
    let authorize = format!(
        "{issuer}/authorize?response_type=code&client_id={DEMO_CLIENT}&redirect_uri=http%3A%2F%2Flocalhost%3A9999%2Fcallback\
         &scope=openid%20profile%20email%20read%3Ademo&state=demo&nonce=demo\
         &code_challenge={CHALLENGE}&code_challenge_method=S256"
    );
    let (login, user_line) = if user_created {
        (format!("sign in as `{DEMO_USER}` / `{password}`"), format!("{DEMO_USER} / password {password}"))
    } else {
        (format!("sign in as `{DEMO_USER}`"), format!("{DEMO_USER} (existed already; password unchanged)"))
    };
    // Printed, not logged: this is a block of instructions for the person at the terminal.
    println!(
        "\n\
         ── Lanyard demo (created because the database had no clients; --no-demo skips this) ──\n\
         API     {DEMO_API} (scopes read:demo write:demo)\n\
         Client  {DEMO_CLIENT} / secret {secret}\n\
         User    {user_line}\n\
         \n\
         1. Open this URL in a browser and {login}:\n   {authorize}\n\
         2. The browser lands on {DEMO_REDIRECT_URI}?code=…  (nothing listens there: copy the code)\n\
         3. Exchange it within 60 seconds:\n   \
            curl -s -u '{DEMO_CLIENT}:{secret}' {issuer}/token -d grant_type=authorization_code \\\n     \
            -d redirect_uri={DEMO_REDIRECT_URI} -d code_verifier={VERIFIER} -d code=PASTE_CODE\n\
         4. Or a machine token:  curl -s -u '{DEMO_CLIENT}:{secret}' {issuer}/token -d grant_type=client_credentials\n"
    );
    Ok(())
}
