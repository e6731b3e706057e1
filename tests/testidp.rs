//! `lanyard::testing::TestIdp` used exactly as another crate's test suite would use it:
//! builder, headless sign-in, minted tokens, and the tokens at `/userinfo` and at an API.

use lanyard::testing::{
    ApiSpec, ClientSpec, Defect, DeviceFlow, DpopKey, MintRequest, ScopeSpec, SignIn, TestIdp, TestIdpError,
};
use lanyard::verify::Verifier;
use serde_json::{Value, json};

const NOTES: &str = "https://api.example.test/notes";
const CALLBACK: &str = "http://127.0.0.1:3000/callback";
const SECRET: &str = "web-secret-for-tests";

async fn idp() -> TestIdp {
    TestIdp::builder()
        .user("alice", "alice-password", json!({ "name": "Alice Example", "email": "alice@example.test" }))
        .user("bob", "bob-password", Value::Null)
        .api(ApiSpec {
            identifier: NOTES.into(),
            name: "Notes".into(),
            scopes: vec![ScopeSpec::Name("read:notes".into()), ScopeSpec::Name("write:notes".into())],
            introspection_client_id: Some("notes-api".into()),
            ..Default::default()
        })
        .client(ClientSpec {
            client_id: Some("web".into()),
            client_secret: Some(SECRET.into()),
            redirect_uris: vec![CALLBACK.into()],
            scope: Some("openid profile email offline_access read:notes".into()),
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            default_api: Some(NOTES.into()),
            ..Default::default()
        })
        .client(ClientSpec {
            client_id: Some("spa".into()),
            token_endpoint_auth_method: Some("none".into()),
            redirect_uris: vec![CALLBACK.into()],
            scope: Some("openid read:notes".into()),
            ..Default::default()
        })
        .client(ClientSpec {
            client_id: Some("tv".into()),
            token_endpoint_auth_method: Some("none".into()),
            grant_types: vec!["urn:ietf:params:oauth:grant-type:device_code".into()],
            scope: Some("openid profile read:notes".into()),
            default_api: Some(NOTES.into()),
            ..Default::default()
        })
        .client(ClientSpec {
            client_id: Some("notes-api".into()),
            client_secret: Some("notes-api-secret".into()),
            grant_types: vec!["client_credentials".into()],
            scope: Some("write:notes".into()),
            default_api: Some(NOTES.into()),
            ..Default::default()
        })
        .start()
        .await
        .expect("the test IdP starts")
}

fn alice_at_web(scope: &str) -> SignIn {
    SignIn {
        client_id: "web".into(),
        client_secret: Some(SECRET.into()),
        redirect_uri: CALLBACK.into(),
        username: "alice".into(),
        scope: scope.into(),
        resource: Some(NOTES.into()),
    }
}

async fn userinfo(idp: &TestIdp, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new().get(idp.url("/userinfo")).bearer_auth(token).send().await.expect("sent");
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_test_idp_serves_discovery_for_its_own_loopback_issuer() {
    let idp = idp().await;
    assert!(idp.issuer().starts_with("http://127.0.0.1:"), "{}", idp.issuer());
    let metadata: Value = reqwest::get(idp.discovery_url()).await.unwrap().json().await.unwrap();
    assert_eq!(metadata["issuer"], idp.issuer());
    assert_eq!(metadata["token_endpoint"], idp.url("/token"));
    idp.stop().await;
}

#[tokio::test]
async fn sign_in_runs_the_code_flow_headlessly_and_returns_tokens_userinfo_accepts() {
    let idp = idp().await;
    let tokens = idp.sign_in(alice_at_web("openid profile email offline_access read:notes")).await.unwrap();
    assert_eq!(tokens.token_type, "Bearer");
    assert!(tokens.expires_in > 0);
    assert_eq!(tokens.scope, "email offline_access openid profile read:notes");
    assert!(tokens.refresh_token.is_some(), "offline_access to a client allowed refresh_token");
    let id_token = tokens.id_token.expect("an id_token for openid");

    let (status, claims) = userinfo(&idp, &tokens.access_token).await;
    assert_eq!(status, 200, "{claims}");
    assert_eq!(claims["name"], "Alice Example");
    assert_eq!(claims["email"], "alice@example.test");
    // The id_token is for the client, not a bearer token.
    let (status, _) = userinfo(&idp, &id_token).await;
    assert_eq!(status, 401);

    let verifier = Verifier::discover(idp.issuer(), NOTES).await.unwrap();
    let claims = verifier.verify(&tokens.access_token).await.expect("an access token for the notes API");
    assert_eq!(claims.client_id, "web");
    assert!(verifier.verify(&id_token).await.is_err());
    idp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_works_for_a_public_client_with_pkce_alone() {
    let idp = idp().await;
    let request = SignIn {
        client_id: "spa".into(),
        client_secret: None,
        redirect_uri: CALLBACK.into(),
        username: "bob".into(),
        scope: "openid read:notes".into(),
        // spa has no default API: the API its scope belongs to is named (RFC 8707).
        resource: Some(NOTES.into()),
    };
    let tokens = idp.sign_in(request).await.unwrap();
    let (status, claims) = userinfo(&idp, &tokens.access_token).await;
    assert_eq!(status, 200);
    assert!(claims.get("name").is_none(), "bob has no claims: {claims}");
    idp.stop().await;
}

#[tokio::test]
async fn sign_in_explains_what_went_wrong() {
    let idp = idp().await;
    let cases: [(SignIn, &str); 4] = [
        (SignIn { username: "mallory".into(), ..alice_at_web("openid") }, "\"mallory\""),
        (SignIn { redirect_uri: "http://127.0.0.1:3000/elsewhere".into(), ..alice_at_web("openid") }, "redirect"),
        (SignIn { client_id: "nobody".into(), ..alice_at_web("openid") }, "nobody"),
        (SignIn { client_secret: Some("wrong".into()), ..alice_at_web("openid") }, "invalid_client"),
    ];
    for (request, expected) in cases {
        let what = format!("{request:?}");
        let error = idp.sign_in(request).await.expect_err(&what);
        assert!(matches!(error, TestIdpError::SignIn(_)), "{error:?}");
        assert!(error.to_string().contains(expected), "{what}: {error} should mention {expected}");
    }
    idp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_flow_runs_the_device_grant_headlessly_and_returns_tokens_an_api_accepts() {
    let idp = idp().await;
    let flow = DeviceFlow {
        client_id: "tv".into(),
        client_secret: None,
        username: "alice".into(),
        scope: "openid profile read:notes".into(),
        resource: None,
    };
    let tokens = idp.device_flow(flow).await.unwrap();
    assert_eq!(tokens.scope, "openid profile read:notes");
    assert!(tokens.id_token.is_some(), "an id_token for openid");
    assert!(tokens.refresh_token.is_none(), "tv is not allowed the refresh grant");
    let (status, claims) = userinfo(&idp, &tokens.access_token).await;
    assert_eq!(status, 200, "{claims}");
    assert_eq!(claims["name"], "Alice Example");
    let verifier = Verifier::discover(idp.issuer(), NOTES).await.unwrap();
    let claims = verifier.verify(&tokens.access_token).await.expect("an access token for the notes API");
    assert_eq!(claims.client_id, "tv");
    idp.stop().await;
}

#[tokio::test]
async fn device_flow_explains_what_went_wrong() {
    let idp = idp().await;
    let tv = |username: &str, client_id: &str| DeviceFlow {
        client_id: client_id.into(),
        client_secret: None,
        username: username.into(),
        scope: "openid".into(),
        resource: None,
    };
    let cases: [(DeviceFlow, &str); 3] = [
        (tv("mallory", "tv"), "\"mallory\""),
        (tv("alice", "spa"), "unauthorized_client"),
        (DeviceFlow { scope: "openid email".into(), ..tv("alice", "tv") }, "invalid_scope"),
    ];
    for (flow, expected) in cases {
        let what = format!("{flow:?}");
        let error = idp.device_flow(flow).await.expect_err(&what);
        assert!(error.to_string().contains(expected), "{what}: {error} should mention {expected}");
    }
    // Denied: the device is told access_denied.
    let started = idp.start_device_flow(&tv("alice", "tv")).await.unwrap();
    idp.decide_device(&started, "alice", false).await.unwrap();
    let error = idp.poll_device_token(&tv("alice", "tv"), &started).await.expect_err("denied");
    assert!(error.to_string().contains("access_denied"), "{error}");
    idp.stop().await;
}

#[tokio::test]
async fn minted_tokens_are_what_a_flow_would_issue() {
    let idp = idp().await;
    let token = idp.mint_access_token("alice", "web", NOTES, "openid profile read:notes").await.unwrap();
    let (status, claims) = userinfo(&idp, &token).await;
    assert_eq!(status, 200);
    assert_eq!(claims["name"], "Alice Example");
    let verifier = Verifier::discover(idp.issuer(), NOTES).await.unwrap();
    assert!(verifier.verify(&token).await.unwrap().has_scope("read:notes"));

    // Without a user: client_credentials for a machine client; an empty API is its default.
    let machine = idp
        .mint(&MintRequest { client: "notes-api".into(), scope: "write:notes".into(), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(verifier.verify(&machine.access_token).await.unwrap().sub, "notes-api");

    // What the client may not have is refused, as at /token.
    let error = idp.mint_access_token("alice", "web", "", "write:notes").await.unwrap_err();
    assert!(error.to_string().contains("write:notes"), "{error}");
    idp.stop().await;
}

#[tokio::test]
async fn defective_tokens_are_minted_for_an_api_to_refuse() {
    let idp = idp().await;
    let verifier = Verifier::discover(idp.issuer(), NOTES).await.unwrap();
    for defect in [Defect::Expired, Defect::WrongAudience, Defect::AlgNone, Defect::ForeignKey] {
        let minted = idp.mint_defective(defect, Some("alice"), "web", NOTES, "read:notes").await.unwrap();
        assert_eq!(minted.expected_status, Some(401));
        assert!(verifier.verify(&minted.access_token).await.is_err(), "{defect} accepted");
    }
    // Without a user: a machine token, broken all the same.
    let machine = idp.mint_defective(Defect::WrongIssuer, None, "notes-api", NOTES, "write:notes").await.unwrap();
    let refused = verifier.verify(&machine.access_token).await.unwrap_err();
    assert!(refused.to_string().contains("issued by"), "{refused}");
    idp.stop().await;
}

#[tokio::test]
async fn an_invalid_registration_is_refused_at_start_naming_the_entry_and_field() {
    let error = TestIdp::builder()
        .client(ClientSpec {
            client_id: Some("web".into()),
            redirect_uris: vec!["http://evil.example/cb".into()],
            ..Default::default()
        })
        .start()
        .await
        .err()
        .expect("refused");
    let message = error.to_string();
    assert!(message.contains("client \"web\"") && message.contains("redirect_uris"), "{message}");

    let error = TestIdp::builder().user("carol", "carol-password", json!(["not", "an", "object"])).start().await;
    assert!(error.err().expect("refused").to_string().contains("claims"));
}

#[tokio::test]
async fn two_test_idps_are_independent_and_dropping_one_stops_it() {
    let first = idp().await;
    let second = TestIdp::builder().start().await.unwrap();
    assert_ne!(first.issuer(), second.issuer());
    assert!(second.store().client("web").await.unwrap().is_none(), "a database of its own");
    let jwks = |idp: &TestIdp| reqwest::get(idp.url("/jwks"));
    let (a, b): (Value, Value) =
        (jwks(&first).await.unwrap().json().await.unwrap(), jwks(&second).await.unwrap().json().await.unwrap());
    assert_ne!(a, b, "keys of its own");

    let url = second.url("/healthz");
    drop(second);
    let mut stopped = false;
    for _ in 0..100 {
        if reqwest::get(&url).await.is_err() {
            stopped = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(stopped, "a dropped TestIdp stops listening");
    first.stop().await;
}

/// `TestIdpBuilder::claims` and `::scope`: a user's roles reach the id_token through a
/// custom scope, and the access token of an API that lists them.
#[tokio::test]
async fn a_test_idp_user_can_be_given_roles_that_reach_the_tokens() {
    use lanyard::testing::ClaimScopeSpec;
    let idp = TestIdp::builder()
        .user("alice", "alice-password", json!({ "name": "Alice Example" }))
        .claims("alice", json!({ "roles": ["admin"], "tenant": "acme" }))
        .scope(ClaimScopeSpec { name: "roles".into(), description: "Your roles".into(), claims: vec!["roles".into()] })
        .api(ApiSpec {
            identifier: NOTES.into(),
            name: "Notes".into(),
            scopes: vec![ScopeSpec::Name("read:notes".into())],
            access_token_claims: vec!["roles".into()],
            ..Default::default()
        })
        .client(ClientSpec {
            client_id: Some("web".into()),
            client_secret: Some(SECRET.into()),
            redirect_uris: vec![CALLBACK.into()],
            scope: Some("openid roles read:notes".into()),
            ..Default::default()
        })
        .start()
        .await
        .expect("the test IdP starts");
    let tokens = idp.sign_in(alice_at_web("openid roles read:notes")).await.expect("signed in");
    let id_token = payload(tokens.id_token.as_deref().expect("an id_token"));
    assert_eq!(id_token["roles"], json!(["admin"]));
    assert!(id_token.get("tenant").is_none(), "no scope releases tenant: {id_token}");
    let verifier = Verifier::discover(idp.issuer(), NOTES).await.unwrap();
    let access = verifier.verify(&tokens.access_token).await.unwrap();
    verifier.require_role(&access, "admin").expect("alice is an admin of the notes API");
    assert!(verifier.require_role(&access, "owner").is_err());

    let unknown = TestIdp::builder().claims("nobody", json!({ "roles": ["admin"] })).start().await;
    assert!(matches!(unknown, Err(TestIdpError::Register { .. })), "claims for a user that was never added");
    idp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_dpop_binds_the_tokens_to_the_key_and_dpop_proof_makes_proofs_for_later_requests() {
    let idp = idp().await;
    let key = DpopKey::generate().unwrap();
    let tokens = idp.sign_in_dpop(alice_at_web("openid profile read:notes"), &key).await.unwrap();
    assert_eq!(tokens.token_type, "DPoP");
    assert_eq!(payload(&tokens.access_token)["cnf"], json!({ "jkt": key.jkt() }));
    // Userinfo with the DPoP scheme and a proof; as a bearer token the bound token is refused.
    let url = idp.url("/userinfo");
    let proof = idp.dpop_proof(&key, "GET", &url, Some(&tokens.access_token)).await.unwrap();
    let http = reqwest::Client::new();
    let response = http
        .get(&url)
        .header("Authorization", format!("DPoP {}", tokens.access_token))
        .header("DPoP", proof)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(userinfo(&idp, &tokens.access_token).await.0, 401);
    // An API verifies the token with a proof for its own URL.
    let verifier = Verifier::discover(idp.issuer(), NOTES).await.unwrap();
    let api_url = "https://api.example.test/notes/1";
    let proof = idp.dpop_proof(&key, "GET", api_url, Some(&tokens.access_token)).await.unwrap();
    let claims = verifier.verify_dpop(&tokens.access_token, &proof, "GET", api_url).await.expect("bound and proved");
    assert_eq!(claims.client_id, "web");
    idp.stop().await;
}

fn payload(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_exchanges_a_users_token_for_a_downstream_api_with_exchange_token() {
    use lanyard::testing::{Exchange, TOKEN_EXCHANGE_GRANT};
    const CALENDAR: &str = "https://api.example.test/calendar";
    let idp = TestIdp::builder()
        .user("alice", "alice-password", Value::Null)
        .api(ApiSpec {
            identifier: NOTES.into(),
            name: "Notes".into(),
            scopes: vec![ScopeSpec::Name("read:notes".into()), ScopeSpec::Name("read:calendar".into())],
            ..Default::default()
        })
        .api(ApiSpec {
            identifier: CALENDAR.into(),
            name: "Calendar".into(),
            scopes: vec![ScopeSpec::Name("read:calendar".into())],
            ..Default::default()
        })
        .client(ClientSpec {
            client_id: Some("web".into()),
            client_secret: Some(SECRET.into()),
            redirect_uris: vec![CALLBACK.into()],
            scope: Some("openid read:notes read:calendar".into()),
            ..Default::default()
        })
        .client(ClientSpec {
            client_id: Some("notes-api".into()),
            client_secret: Some("notes-api-secret".into()),
            grant_types: vec![TOKEN_EXCHANGE_GRANT.into()],
            scope: Some(String::new()),
            ..Default::default()
        })
        .token_exchange(NOTES, "notes-api", &[CALENDAR])
        .start()
        .await
        .expect("the test IdP starts");
    let tokens = idp.sign_in(alice_at_web("openid read:notes read:calendar")).await.expect("signed in");
    let exchange = Exchange {
        client_id: "notes-api".into(),
        client_secret: "notes-api-secret".into(),
        subject_token: tokens.access_token.clone(),
        resource: CALENDAR.into(),
        scope: None,
    };
    let exchanged = idp.exchange_token(&exchange).await.unwrap().expect("exchanged");
    assert_eq!(exchanged.issued_token_type.as_deref(), Some("urn:ietf:params:oauth:token-type:access_token"));
    assert_eq!(exchanged.scope, "read:calendar");
    assert!(exchanged.refresh_token.is_none() && exchanged.id_token.is_none());
    let claims =
        Verifier::discover(idp.issuer(), CALENDAR).await.unwrap().verify(&exchanged.access_token).await.unwrap();
    assert_eq!(claims.actors(), ["notes-api"]);
    assert_eq!(claims.client_id, "web");

    let refused = idp
        .exchange_token(&Exchange { scope: Some("read:notes".into()), ..exchange.clone() })
        .await
        .unwrap()
        .expect_err("read:notes is not a calendar scope");
    assert_eq!((refused.status, refused.error.as_str()), (400, "invalid_scope"), "{refused:?}");
    let unknown = TestIdp::builder().token_exchange("https://api.example.test/none", "x", &[CALENDAR]).start().await;
    assert!(matches!(unknown, Err(TestIdpError::Register { .. })), "an exchange for an API never added");
    idp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_pushed_pushes_the_request_first_as_a_client_requiring_par_must() {
    let idp = TestIdp::builder()
        .user("alice", "alice-password", Value::Null)
        .client(ClientSpec {
            client_id: Some("par".into()),
            client_secret: Some(SECRET.into()),
            redirect_uris: vec![CALLBACK.into()],
            scope: Some("openid".into()),
            require_pushed_authorization_requests: Some(true),
            ..Default::default()
        })
        .start()
        .await
        .expect("the test IdP starts");
    let request = SignIn {
        client_id: "par".into(),
        client_secret: Some(SECRET.into()),
        redirect_uri: CALLBACK.into(),
        username: "alice".into(),
        scope: "openid".into(),
        resource: None,
    };
    let refused = idp.sign_in(request.clone()).await.expect_err("a plain /authorize is refused");
    assert!(refused.to_string().contains("invalid_request"), "{refused}");
    let tokens = idp.sign_in_pushed(request).await.expect("the pushed flow");
    assert!(tokens.id_token.is_some());

    // The push alone, for tests that drive /authorize themselves (RFC 7636's example challenge).
    let pushed = idp
        .push_authorization_request(
            "par",
            Some(SECRET),
            &[
                ("response_type", "code"),
                ("redirect_uri", CALLBACK),
                ("scope", "openid"),
                ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
                ("code_challenge_method", "S256"),
            ],
        )
        .await
        .expect("pushed");
    assert!(pushed.request_uri.starts_with("urn:ietf:params:oauth:request_uri:"), "{pushed:?}");
    assert_eq!(pushed.expires_in, 60);
    let wrong = idp.push_authorization_request("par", Some("wrong"), &[("response_type", "code")]).await;
    assert!(wrong.expect_err("a wrong secret").to_string().contains("invalid_client"));
    idp.stop().await;
}
