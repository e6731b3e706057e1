//! The authorization code flow, driven by a real relying party library (`openidconnect`).

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::Value;

use crate::both_backends;
use crate::flow::{self, API, Browser, REDIRECT_URI};
use crate::helpers::{Backend, TestDb, TestServer};

both_backends!(
    a_relying_party_signs_a_user_in_and_gets_tokens_for_itself_and_for_the_api,
    userinfo_refuses_the_id_token_and_accepts_the_access_token,
);

async fn a_relying_party_signs_a_user_in_and_gets_tokens_for_itself_and_for_the_api(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture_with(&server, |c| c.default_api = Some(API.into())).await;

    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(server.base.clone()).unwrap(), &http)
        .await
        .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(fx.client_id.clone()),
        Some(ClientSecret::new(fx.client_secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("read:appointments".into()))
        .set_pkce_challenge(challenge)
        .url();

    let browser = Browser::new(&server);
    let login = browser.open(auth_url.as_str()).await;
    assert_eq!(login.status(), 200);
    assert!(login.html().contains("Web app"), "the login page names the client");
    let consent = browser.login(&login, "alice", flow::PASSWORD).await;
    assert!(consent.html().contains("read:appointments"), "the consent page lists the scopes");
    assert!(consent.html().contains("Appointments"), "the consent page names the API");
    let outcome = browser.consent(&consent, "allow").await;
    let params = outcome.params();
    assert_eq!(params.get("state").map(String::as_str), Some(csrf.secret().as_str()));
    assert_eq!(params.get("iss").map(String::as_str), Some(server.base.as_str()), "RFC 9207 iss");

    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an id_token");
    let claims = id_token.claims(&client.id_token_verifier(), &nonce).expect("the RP library accepts the id_token");
    assert_eq!(claims.subject().as_str(), fx.user_id);
    assert_eq!(claims.email().map(|e| e.as_str()), Some("alice@example.test"));
    let expected_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&client.id_token_verifier()).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected_hash), "at_hash binds the access token");

    // The id_token is for the client alone.
    let (header, id_claims) = flow::decode_jwt(&id_token.to_string());
    assert_eq!(header["typ"], "JWT");
    assert_eq!(id_claims["aud"], Value::String(fx.client_id.clone()));
    assert!(id_claims["sid"].is_string() && id_claims["auth_time"].is_i64());
    // The access token is for the API and userinfo, with the granted scopes.
    let (header, at) = flow::decode_jwt(tokens.access_token().secret());
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(at["aud"], serde_json::json!([API, server.url("/userinfo")]));
    assert_eq!(at["client_id"], fx.client_id.as_str());
    assert_eq!(at["azp"], fx.client_id.as_str());
    assert_eq!(at["sub"], fx.user_id.as_str());
    assert!(at["jti"].is_string());
    assert!(at.get("email").is_none() && at.get("name").is_none(), "no profile claims in access tokens: {at}");
    let mut scope: Vec<&str> = at["scope"].as_str().unwrap().split(' ').collect();
    scope.sort();
    assert_eq!(scope, ["email", "openid", "profile", "read:appointments"]);
}

async fn userinfo_refuses_the_id_token_and_accepts_the_access_token(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture_with(&server, |c| c.first_party = Some(true)).await;
    let browser = Browser::new(&server);
    let outcome = browser.sign_in(&flow::authorize_url(&server, &fx.client_id, &[]), "alice").await;
    let (status, tokens) = flow::exchange(&server, &fx, &outcome.params()["code"], flow::VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");

    let response = server
        .http
        .get(server.url("/userinfo"))
        .bearer_auth(tokens["id_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains("id_token"), "the reason names the id_token: {challenge}");

    let response = server
        .http
        .get(server.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let claims: Value = response.json().await.unwrap();
    assert_eq!(claims["sub"], fx.user_id.as_str());
    assert_eq!(claims["email"], "alice@example.test");
    assert_eq!(claims["name"], "alice Example");
}
