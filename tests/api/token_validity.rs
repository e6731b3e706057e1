//! A token is not valid before its time: an access token whose `nbf` or `iat` lies in the
//! future (past the configured clock leeway) is refused by every verifier — `/userinfo`,
//! `/introspect` and `lanyard::verify` — while a small skew within the leeway is accepted.

use lanyard::verify::Verifier;
use serde_json::{Value, json};

use crate::both_backends;
use crate::flow::API;
use crate::helpers::{Backend, SignedIn, TestDb, TestServer, signed_in_with_refresh};
use crate::token_lifecycle::{Reply, now, post_form, sign_with_server_key};

both_backends!(
    an_access_token_not_yet_valid_is_refused_by_userinfo_introspection_and_the_api_verifier,
    an_access_token_valid_in_a_few_seconds_is_accepted_within_the_clock_leeway,
);

/// The real token's claims with a new `jti` and `changes` applied, signed with the
/// server's own key: perfect but for what the test changes.
async fn resigned(server: &TestServer, s: &SignedIn, changes: &[(&str, Value)]) -> String {
    let (_, mut claims) = crate::flow::decode_jwt(s.access_token());
    claims["jti"] = json!(uuid::Uuid::new_v4().to_string());
    for (name, value) in changes {
        claims[*name] = value.clone();
    }
    sign_with_server_key(server, "at+jwt", &claims).await
}

async fn userinfo(server: &TestServer, token: &str) -> Reply {
    Reply::read(server.http.get(server.url("/userinfo")).bearer_auth(token).send().await.expect("sent")).await
}

async fn introspect(server: &TestServer, s: &SignedIn, token: &str) -> Reply {
    post_form(server, "/introspect", Some(&s.introspector), &[("token", token)]).await
}

async fn an_access_token_not_yet_valid_is_refused_by_userinfo_introspection_and_the_api_verifier(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let s = signed_in_with_refresh(&server).await;
    let verifier = Verifier::discover(&server.base, API).await.expect("the API discovers Lanyard");
    let (_, original) = crate::flow::decode_jwt(s.access_token());
    assert!(original["aud"].to_string().contains(API), "a token for the API and userinfo: {original}");

    // The untouched token passes everywhere: what follows is about time only.
    let control = resigned(&server, &s, &[]).await;
    assert_eq!(userinfo(&server, &control).await.status, 200, "the re-signed token as it was");
    assert_eq!(introspect(&server, &s, &control).await.body["active"], true);
    verifier.verify(&control).await.expect("the verifier accepts the re-signed token as it was");

    let hour_ahead = now() + 3600;
    let cases: [(&str, Vec<(&str, Value)>); 3] = [
        ("nbf an hour ahead", vec![("nbf", json!(hour_ahead))]),
        ("iat an hour ahead", vec![("iat", json!(hour_ahead))]),
        ("nbf and iat an hour ahead", vec![("nbf", json!(hour_ahead)), ("iat", json!(hour_ahead))]),
    ];
    for (what, changes) in cases {
        let token = resigned(&server, &s, &changes).await;

        let reply = userinfo(&server, &token).await;
        assert_eq!((reply.status, reply.error()), (401, "invalid_token"), "{what}: /userinfo: {}", reply.text);
        let said = format!("{} {}", reply.challenge(), reply.text).to_lowercase();
        assert!(said.contains("not yet valid") || said.contains("future"), "{what}: says why: {said}");

        let reply = introspect(&server, &s, &token).await;
        assert_eq!(reply.status, 200, "{what}: /introspect: {}", reply.text);
        assert_eq!(reply.body, json!({ "active": false }), "{what}: /introspect");

        let verified = verifier.verify(&token).await;
        assert!(verified.is_err(), "{what}: lanyard::verify accepted it: {verified:?}");
    }
}

async fn an_access_token_valid_in_a_few_seconds_is_accepted_within_the_clock_leeway(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    assert_eq!(server.config.clock_leeway, 30, "the documented default");
    let s = signed_in_with_refresh(&server).await;
    let verifier = Verifier::discover(&server.base, API).await.expect("the API discovers Lanyard");

    let soon = now() + 10;
    for (what, changes) in
        [("nbf 10 s ahead", vec![("nbf", json!(soon))]), ("iat 10 s ahead", vec![("iat", json!(soon))])]
    {
        let token = resigned(&server, &s, &changes).await;
        let reply = userinfo(&server, &token).await;
        assert_eq!(reply.status, 200, "{what}: /userinfo: {} {}", reply.challenge(), reply.text);
        let reply = introspect(&server, &s, &token).await;
        assert_eq!(reply.body["active"], true, "{what}: /introspect: {}", reply.text);
        verifier.verify(&token).await.unwrap_or_else(|e| panic!("{what}: lanyard::verify refused it: {e}"));
    }
}
