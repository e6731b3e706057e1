//! Token exchange (RFC 8693): an API, authenticated as its introspection client, trades a
//! user's access token for itself for one for a downstream API it is configured to call;
//! the downstream token names the user, the original client and, in `act`, the API that
//! acts. Every refusal is an RFC 6749 error that issues nothing.

use lanyard::registry::{self, api::ApiSpec, api::ScopeSpec};
use lanyard::verify::Verifier;
use serde_json::{Value, json};

use crate::both_backends;
use crate::flow::{self, API as APPOINTMENTS, Browser, Fixture};
use crate::helpers::{Backend, TestDb, TestServer};
use crate::token_lifecycle::{Creds, Reply, access_token_expiring_at, machine_client, member, now, post_form};

both_backends!(
    an_api_exchanges_its_users_token_for_a_downstream_token_that_lanyard_verify_accepts,
    a_chained_exchange_nests_the_earlier_actor_and_a_loop_of_exchanges_ends,
    exchanged_tokens_are_revoked_with_the_grant_of_their_subject_token,
    refused_subject_tokens_are_invalid_grant_naming_why,
    scopes_are_only_ever_narrowed_and_widening_is_invalid_scope_naming_the_scopes,
    the_target_must_be_one_of_the_exchanging_apis_token_exchange_audiences,
    only_an_apis_introspection_client_allowed_the_grant_may_exchange,
    malformed_exchange_requests_are_invalid_request_naming_the_parameter,
    the_grant_and_the_audiences_are_configurable_through_the_admin_api_registration_and_seed_export,
);

const CALENDAR: &str = "https://api.example.test/calendar";
const ROOMS: &str = "https://api.example.test/rooms";
const OTHER: &str = "https://api.example.test/other";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
/// What alice grants `web`: the appointments API's scopes, and read:schedule, which the
/// appointments API needs to read her calendar on her behalf.
const SCOPE: &str = "openid profile read:appointments read:schedule";
/// The appointments API's access token lifetime: shorter than the calendar's, so that an
/// exchanged token's expiry is visibly capped by its subject's.
const APPOINTMENTS_TTL: i64 = 300;
const ROOMS_TTL: i64 = 120;

/// alice; `web`; the appointments API (exchanges for the calendar), the calendar API
/// (exchanges for rooms), the rooms API and an unrelated API, each with its own
/// introspection client.
struct Setup {
    server: TestServer,
    fx: Fixture,
    /// The appointments API's introspection client, allowed the token-exchange grant.
    appointments: Creds,
    /// The calendar API's, allowed the grant too.
    calendar: Creds,
    /// The rooms API's, allowed the grant too.
    rooms: Creds,
    /// The other API's introspection client, allowed only client_credentials.
    other: Creds,
    /// Allowed the grant, but no API's introspection client.
    stranger: Creds,
}

async fn api(server: &TestServer, identifier: &str, scopes: &[&str], ttl: i64, client: Option<&str>, to: &[&str]) {
    let spec = ApiSpec {
        identifier: identifier.into(),
        name: identifier.rsplit('/').next().unwrap_or(identifier).into(),
        scopes: scopes.iter().map(|s| ScopeSpec::Name((*s).into())).collect(),
        access_token_ttl: Some(ttl),
        introspection_client_id: client.map(str::to_owned),
        token_exchange_audiences: to.iter().map(|a| (*a).to_owned()).collect(),
        ..Default::default()
    };
    let outcome = match server.store.api(identifier).await.unwrap() {
        Some(_) => registry::update_api(&server.store, spec).await,
        None => registry::create_api(&server.store, spec).await,
    };
    outcome.unwrap_or_else(|e| panic!("API {identifier}: {e}"));
}

async fn setup(db: &TestDb) -> Setup {
    let server = TestServer::start(db).await;
    api(&server, CALENDAR, &["read:schedule", "write:schedule"], 3600, None, &[]).await;
    api(&server, ROOMS, &["read:schedule"], ROOMS_TTL, None, &[]).await;
    api(&server, OTHER, &["read:other"], 3600, None, &[]).await;
    let fx = flow::fixture_with(&server, |c| c.scope = Some(format!("{SCOPE} email read:other"))).await;
    let exchanger = |c: &mut lanyard::registry::client::ClientSpec| c.grant_types = vec![GRANT.into()];
    let appointments = machine_client(&server, "appointments-api", "", exchanger).await;
    let calendar = machine_client(&server, "calendar-api", "", exchanger).await;
    let rooms = machine_client(&server, "rooms-api", "", exchanger).await;
    let stranger = machine_client(&server, "stranger", "", exchanger).await;
    let other = machine_client(&server, "other-api", "", |_| {}).await;
    let appointments_scopes = ["read:appointments", "write:appointments", "read:schedule"];
    api(&server, APPOINTMENTS, &appointments_scopes, APPOINTMENTS_TTL, Some("appointments-api"), &[CALENDAR]).await;
    api(&server, CALENDAR, &["read:schedule", "write:schedule"], 3600, Some("calendar-api"), &[ROOMS]).await;
    api(&server, ROOMS, &["read:schedule"], ROOMS_TTL, Some("rooms-api"), &[]).await;
    api(&server, OTHER, &["read:other"], 3600, Some("other-api"), &[CALENDAR]).await;
    Setup { server, fx, appointments, calendar, rooms, other, stranger }
}

impl Setup {
    /// alice signs in to `web` for the appointments API with `scope`; the token response.
    async fn sign_in(&self, scope: &str) -> Value {
        let browser = Browser::new(&self.server);
        crate::token_lifecycle::sign_in(
            &self.server,
            &browser,
            &self.fx,
            &[("scope", scope), ("resource", APPOINTMENTS)],
        )
        .await
    }

    /// A token exchange by `creds` with these parameters (nothing is added).
    async fn post(&self, creds: &Creds, form: &[(&str, &str)]) -> Reply {
        let mut all = vec![("grant_type", GRANT)];
        all.extend_from_slice(form);
        post_form(&self.server, "/token", Some(creds), &all).await
    }

    /// A well-formed exchange of `subject` for `resource`, plus `extra`.
    async fn exchange(&self, creds: &Creds, subject: &str, resource: &str, extra: &[(&str, &str)]) -> Reply {
        let mut form = vec![("subject_token", subject), ("subject_token_type", ACCESS_TOKEN), ("resource", resource)];
        form.extend_from_slice(extra);
        self.post(creds, &form).await
    }

    /// An exchange that must succeed; returns the issued token and its claims.
    async fn exchanged(&self, creds: &Creds, subject: &str, resource: &str, extra: &[(&str, &str)]) -> (String, Value) {
        let reply = self.exchange(creds, subject, resource, extra).await;
        assert_eq!(reply.status, 200, "exchange by {} for {resource}: {}", creds.id, reply.text);
        let token = reply.str("access_token").to_owned();
        let (_, claims) = flow::decode_jwt(&token);
        (token, claims)
    }
}

/// Asserts an RFC 6749 §5.2 error that issued nothing, whose description contains each
/// of `says`.
fn assert_refused(reply: &Reply, status: u16, error: &str, says: &[&str], what: &str) {
    assert_eq!((reply.status, reply.error()), (status, error), "{what}: {}", reply.text);
    let description = reply.body["error_description"].as_str().unwrap_or("");
    for words in says {
        assert!(description.contains(words), "{what}: {description:?} should say {words:?}");
    }
    assert!(reply.body.get("access_token").is_none(), "{what}: nothing is issued");
    assert_eq!(reply.header("cache-control"), Some("no-store"), "{what}");
}

async fn introspect(server: &TestServer, creds: &Creds, token: &str) -> Value {
    let reply = post_form(server, "/introspect", Some(creds), &[("token", token)]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body
}

async fn an_api_exchanges_its_users_token_for_a_downstream_token_that_lanyard_verify_accepts(backend: Backend) {
    use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
    use openidconnect::{
        AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
        RedirectUrl, Scope, TokenResponse,
    };
    let db = TestDb::create(backend).await;
    let s = setup(&db).await;
    let server = &s.server;

    // alice signs in to `web`, a relying party built on the openidconnect crate.
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(server.base.clone()).unwrap(), &http).await.unwrap();
    let grants: Vec<String> = metadata
        .grant_types_supported()
        .expect("grant_types_supported")
        .iter()
        .map(|g| serde_json::to_value(g).unwrap().as_str().unwrap().to_owned())
        .collect();
    assert!(grants.iter().any(|g| g == GRANT), "discovery advertises token exchange: {grants:?}");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(s.fx.client_id.clone()),
        Some(ClientSecret::new(s.fx.client_secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(flow::REDIRECT_URI.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scopes(["profile", "read:appointments", "read:schedule"].map(|s| Scope::new(s.into())))
        .add_extra_param("resource", APPOINTMENTS)
        .set_pkce_challenge(challenge)
        .url();
    let outcome = Browser::new(server).sign_in(url.as_str(), "alice").await;
    let tokens = client
        .exchange_code(AuthorizationCode::new(outcome.params()["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an id_token");
    id_token.claims(&client.id_token_verifier(), &nonce).expect("the library accepts the id_token");
    let subject = tokens.access_token().secret().clone();
    let (_, subject_claims) = flow::decode_jwt(&subject);

    // The appointments API exchanges it for a calendar token.
    let reply = s.exchange(&s.appointments, &subject, CALENDAR, &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.str("issued_token_type"), ACCESS_TOKEN);
    assert_eq!(reply.str("token_type"), "Bearer");
    // Only read:schedule of the granted scopes is the calendar's; no id_token, no refresh.
    assert_eq!(reply.str("scope"), "read:schedule");
    for absent in ["refresh_token", "id_token"] {
        assert!(reply.body.get(absent).is_none(), "no {absent}: {}", reply.text);
    }
    let exchanged = reply.str("access_token").to_owned();
    let (header, claims) = flow::decode_jwt(&exchanged);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["aud"], CALENDAR, "for the calendar alone (no userinfo)");
    assert_eq!(claims["sub"], s.fx.user_id);
    assert_eq!(claims["sub"], subject_claims["sub"], "the same user, as the client sees her");
    assert_eq!((&claims["client_id"], &claims["azp"]), (&json!("web"), &json!("web")), "the original client");
    assert_eq!(claims["act"], json!({"sub": "appointments-api"}), "the exchanging API acts");
    assert_eq!(claims["scope"], "read:schedule");
    assert_eq!(claims["auth_time"], subject_claims["auth_time"]);
    assert_eq!(claims["sid"], subject_claims["sid"]);
    assert_ne!(claims["jti"], subject_claims["jti"]);
    // The calendar's lifetime is an hour, the subject's five minutes: the subject's wins.
    assert_eq!(claims["exp"], subject_claims["exp"], "never beyond the subject token");
    let expires_in = reply.body["expires_in"].as_i64().unwrap();
    assert!((APPOINTMENTS_TTL - 5..=APPOINTMENTS_TTL).contains(&expires_in), "expires_in {expires_in}");

    // The calendar API accepts it with lanyard::verify; the appointments API does not.
    let calendar = Verifier::with_jwks_uri(&server.base, CALENDAR, &server.url("/jwks")).unwrap();
    let verified = calendar.verify(&exchanged).await.expect("the calendar API accepts the exchanged token");
    assert_eq!(verified.sub, s.fx.user_id);
    assert_eq!(verified.actors(), ["appointments-api"]);
    assert!(verified.has_scope("read:schedule") && !verified.has_scope("read:appointments"));
    let appointments = Verifier::with_jwks_uri(&server.base, APPOINTMENTS, &server.url("/jwks")).unwrap();
    assert!(appointments.verify(&exchanged).await.is_err(), "not an appointments token");
    assert!(calendar.verify(&subject).await.is_err(), "the subject token is not a calendar token");

    // Introspection by the calendar shows `act`; by the appointments API, nothing.
    let active = introspect(server, &s.calendar, &exchanged).await;
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["act"], json!({"sub": "appointments-api"}));
    assert_eq!(active["client_id"], "web");
    assert_eq!(introspect(server, &s.appointments, &exchanged).await, json!({"active": false}));
    // The subject token is untouched by the exchange.
    assert_eq!(introspect(server, &s.appointments, &subject).await["active"], true);

    // Userinfo is for tokens with openid and the userinfo audience: not this one.
    let userinfo = server.http.get(server.url("/userinfo")).bearer_auth(&exchanged).send().await.unwrap();
    assert_eq!(userinfo.status(), 401);
    let challenge = userinfo.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    let userinfo = server.http.get(server.url("/userinfo")).bearer_auth(&subject).send().await.unwrap();
    assert_eq!(userinfo.status(), 200, "the subject token still reaches userinfo");
}

async fn a_chained_exchange_nests_the_earlier_actor_and_a_loop_of_exchanges_ends(backend: Backend) {
    let db = TestDb::create(backend).await;
    let s = setup(&db).await;
    let subject = member(&s.sign_in(SCOPE).await, "access_token").to_owned();
    let (calendar_token, calendar) = s.exchanged(&s.appointments, &subject, CALENDAR, &[]).await;

    // The calendar, in turn, calls the rooms API for alice.
    let (rooms_token, rooms) = s.exchanged(&s.calendar, &calendar_token, ROOMS, &[]).await;
    assert_eq!(rooms["aud"], ROOMS);
    assert_eq!(rooms["act"], json!({"sub": "calendar-api", "act": {"sub": "appointments-api"}}));
    assert_eq!((&rooms["sub"], &rooms["client_id"]), (&json!(s.fx.user_id), &json!("web")));
    assert_eq!(rooms["scope"], "read:schedule");
    // The rooms API's own lifetime is shorter than what is left of the calendar token.
    let exp = rooms["exp"].as_i64().unwrap();
    assert!(exp <= now() + ROOMS_TTL + 2 && exp <= calendar["exp"].as_i64().unwrap(), "exp {exp}");
    let verifier = Verifier::with_jwks_uri(&s.server.base, ROOMS, &s.server.url("/jwks")).unwrap();
    assert_eq!(verifier.verify(&rooms_token).await.unwrap().actors(), ["calendar-api", "appointments-api"]);
    assert_eq!(introspect(&s.server, &s.rooms, &rooms_token).await["act"]["act"]["sub"], "appointments-api");

    // Rooms configured to call the appointments API closes a loop; it ends at 5 actors.
    api(&s.server, ROOMS, &["read:schedule"], ROOMS_TTL, Some("rooms-api"), &[APPOINTMENTS]).await;
    let hops = [(&s.rooms, APPOINTMENTS), (&s.appointments, CALENDAR), (&s.calendar, ROOMS)];
    let mut token = rooms_token;
    // The rooms token names 2 actors; each hop adds one, up to 5; the sixth is refused.
    for (actors, (creds, to)) in (2..).zip(hops.iter().cycle()) {
        let reply = s.exchange(creds, &token, to, &[]).await;
        if actors == 5 {
            assert_refused(&reply, 400, "invalid_grant", &["exchanged 5 times"], "the sixth actor");
            break;
        }
        assert_eq!(reply.status, 200, "actor {}: {}", actors + 1, reply.text);
        token = reply.str("access_token").to_owned();
        assert_eq!(flow::decode_jwt(&token).1["act"]["sub"], creds.id);
    }
}

async fn exchanged_tokens_are_revoked_with_the_grant_of_their_subject_token(backend: Backend) {
    let db = TestDb::create(backend).await;
    let s = setup(&db).await;
    let subject = member(&s.sign_in(SCOPE).await, "access_token").to_owned();
    let (exchanged, _) = s.exchanged(&s.appointments, &subject, CALENDAR, &[]).await;
    assert_eq!(introspect(&s.server, &s.calendar, &exchanged).await["active"], true);

    // Ending alice's sessions revokes her grants, and with them the exchanged token.
    s.server.store.revoke_user_grants(&s.fx.user_id).await.unwrap();
    assert_eq!(introspect(&s.server, &s.calendar, &exchanged).await, json!({"active": false}));
    let reply = s.exchange(&s.appointments, &subject, CALENDAR, &[]).await;
    assert_refused(&reply, 400, "invalid_grant", &["revoked"], "a revoked grant's token");
}

async fn refused_subject_tokens_are_invalid_grant_naming_why(backend: Backend) {
    let db = TestDb::create(backend).await;
    let s = setup(&db).await;
    let server = &s.server;
    let tokens = s.sign_in(SCOPE).await;
    let user = s.fx.user_id.as_str();

    let id_token = member(&tokens, "id_token");
    let reply = s.exchange(&s.appointments, id_token, CALENDAR, &[]).await;
    assert_refused(&reply, 400, "invalid_grant", &["subject_token", "id_token"], "an id_token");

    let foreign = access_token_expiring_at(server, OTHER, user, now() + 600).await;
    let reply = s.exchange(&s.appointments, &foreign, CALENDAR, &[]).await;
    assert_refused(&reply, 400, "invalid_grant", &["not meant for", APPOINTMENTS], "another API's token");

    // Expired long ago, and a moment ago (within the leeway: still nothing left to give).
    for ago in [3600, 5] {
        let expired = access_token_expiring_at(server, APPOINTMENTS, user, now() - ago).await;
        let reply = s.exchange(&s.appointments, &expired, CALENDAR, &[]).await;
        assert_refused(&reply, 400, "invalid_grant", &["expired"], &format!("expired {ago} s ago"));
    }

    // A token signed by another key is not Lanyard's.
    let mut forged = member(&tokens, "access_token").to_owned();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    let reply = s.exchange(&s.appointments, &forged, CALENDAR, &[]).await;
    assert_refused(&reply, 400, "invalid_grant", &["subject_token"], "a bad signature");

    // Revoked by its client (RFC 7009).
    let revoked = member(&s.sign_in(SCOPE).await, "access_token").to_owned();
    let web = Creds::from(&s.fx);
    assert_eq!(post_form(server, "/revoke", Some(&web), &[("token", &revoked)]).await.status, 200);
    let reply = s.exchange(&s.appointments, &revoked, CALENDAR, &[]).await;
    assert_refused(&reply, 400, "invalid_grant", &["revoked"], "a revoked token");

    // A machine's own token (client_credentials) is nobody's to act for.
    let machine = machine_client(server, "machine", "read:appointments read:schedule", |_| {}).await;
    let reply = post_form(
        server,
        "/token",
        Some(&machine),
        &[("grant_type", "client_credentials"), ("resource", APPOINTMENTS)],
    )
    .await;
    let machine_token = reply.str("access_token").to_owned();
    let reply = s.exchange(&s.appointments, &machine_token, CALENDAR, &[]).await;
    assert_refused(&reply, 400, "invalid_grant", &["client_credentials"], "a client_credentials token");

    // A disabled user's token.
    let fresh = member(&s.sign_in(SCOPE).await, "access_token").to_owned();
    let mut alice = server.store.user_by_id(user).await.unwrap().unwrap();
    alice.disabled = true;
    assert!(server.store.update_user(&alice).await.unwrap());
    let reply = s.exchange(&s.appointments, &fresh, CALENDAR, &[]).await;
    assert_refused(&reply, 400, "invalid_grant", &["disabled"], "a disabled user");
}

async fn scopes_are_only_ever_narrowed_and_widening_is_invalid_scope_naming_the_scopes(backend: Backend) {
    let db = TestDb::create(backend).await;
    let s = setup(&db).await;
    let subject = member(&s.sign_in(SCOPE).await, "access_token").to_owned();

    let (_, claims) = s.exchanged(&s.appointments, &subject, CALENDAR, &[("scope", "read:schedule")]).await;
    assert_eq!(claims["scope"], "read:schedule", "the same scope, asked for");

    let cases = [
        // A calendar scope alice never granted.
        ("read:schedule write:schedule", "\"write:schedule\" was not granted"),
        // Granted, but the appointments API's, not the calendar's.
        ("read:appointments", "\"read:appointments\" is not a scope of https://api.example.test/calendar"),
        // OpenID Connect scopes never travel: an exchanged token is for an API.
        ("openid", "\"openid\" is not a scope of"),
        ("  ", "names no scope"),
    ];
    for (scope, says) in cases {
        let reply = s.exchange(&s.appointments, &subject, CALENDAR, &[("scope", scope)]).await;
        assert_refused(&reply, 400, "invalid_scope", &[says], scope);
    }

    // Without read:schedule in the subject token, nothing is left for the calendar.
    let narrow = member(&s.sign_in("openid read:appointments").await, "access_token").to_owned();
    let reply = s.exchange(&s.appointments, &narrow, CALENDAR, &[]).await;
    assert_refused(&reply, 400, "invalid_scope", &["none of the subject_token's scopes"], "no calendar scope");

    // A scope taken away from the client since is not exchanged any more.
    let mut web = s.server.store.client("web").await.unwrap().unwrap();
    web.scope = lanyard::oauth::scope::ScopeSet::parse("openid profile email read:appointments").unwrap();
    assert!(s.server.store.update_client(&web).await.unwrap());
    let reply = s.exchange(&s.appointments, &subject, CALENDAR, &[("scope", "read:schedule")]).await;
    assert_refused(&reply, 400, "invalid_scope", &["no longer allowed to web"], "a scope the client lost");
}

async fn the_target_must_be_one_of_the_exchanging_apis_token_exchange_audiences(backend: Backend) {
    let db = TestDb::create(backend).await;
    let s = setup(&db).await;
    let subject = member(&s.sign_in(SCOPE).await, "access_token").to_owned();

    // `audience` names the target as well as `resource` does.
    let reply = s
        .post(
            &s.appointments,
            &[("subject_token", &subject), ("subject_token_type", ACCESS_TOKEN), ("audience", CALENDAR)],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);

    let reply = s.exchange(&s.appointments, &subject, ROOMS, &[]).await;
    assert_refused(&reply, 400, "invalid_target", &[ROOMS, "token_exchange_audiences"], "a registered API not listed");
    let reply = s.exchange(&s.appointments, &subject, "https://api.example.test/nowhere", &[]).await;
    assert_refused(&reply, 400, "invalid_target", &["nowhere"], "an unregistered API");
    let reply = s.exchange(&s.appointments, &subject, CALENDAR, &[("audience", ROOMS)]).await;
    assert_refused(&reply, 400, "invalid_target", &["one downstream API"], "two targets");

    // Deleting the calendar API takes it off the appointments API's list.
    assert!(s.server.store.delete_api(CALENDAR).await.unwrap());
    let appointments = s.server.store.api(APPOINTMENTS).await.unwrap().unwrap();
    assert!(appointments.token_exchange_audiences.is_empty(), "{:?}", appointments.token_exchange_audiences);
    let reply = s.exchange(&s.appointments, &subject, CALENDAR, &[]).await;
    assert_refused(&reply, 400, "invalid_target", &[CALENDAR], "a deleted API");
}

async fn only_an_apis_introspection_client_allowed_the_grant_may_exchange(backend: Backend) {
    let db = TestDb::create(backend).await;
    let s = setup(&db).await;
    let server = &s.server;
    let subject = member(&s.sign_in(SCOPE).await, "access_token").to_owned();

    // The other API's client is not allowed the grant (it speaks for an API that lists
    // the calendar, and holds a token for that API: only the grant is missing).
    let browser = Browser::new(server);
    let tokens = crate::token_lifecycle::sign_in(
        server,
        &browser,
        &s.fx,
        &[("scope", "openid read:other"), ("resource", OTHER)],
    )
    .await;
    let other_token = member(&tokens, "access_token");
    let reply = s.exchange(&s.other, other_token, CALENDAR, &[]).await;
    assert_refused(&reply, 400, "unauthorized_client", &[GRANT], "a client not allowed the grant");

    // Allowed the grant, but no API's introspection client.
    let reply = s.exchange(&s.stranger, &subject, CALENDAR, &[]).await;
    assert_refused(&reply, 400, "unauthorized_client", &["introspection client"], "a client that is no API");

    // Another API's client, with a token that is not for its API.
    let reply = s.exchange(&s.calendar, &subject, ROOMS, &[]).await;
    assert_refused(&reply, 400, "invalid_grant", &["not meant for", CALENDAR], "a token for another API");

    // The user's own client cannot exchange: it is no API.
    let reply = s.exchange(&Creds::from(&s.fx), &subject, CALENDAR, &[]).await;
    assert_refused(&reply, 400, "unauthorized_client", &[GRANT], "the client itself");

    // Unauthenticated, or with a wrong secret.
    let form = [("grant_type", GRANT), ("subject_token", &subject), ("subject_token_type", ACCESS_TOKEN)];
    let reply = post_form(server, "/token", None, &form).await;
    assert_eq!((reply.status, reply.error()), (401, "invalid_client"), "{}", reply.text);
    let wrong = Creds { id: s.appointments.id.clone(), secret: "not-the-secret".into() };
    let reply = s.exchange(&wrong, &subject, CALENDAR, &[]).await;
    assert_eq!((reply.status, reply.error()), (401, "invalid_client"), "{}", reply.text);
}

async fn malformed_exchange_requests_are_invalid_request_naming_the_parameter(backend: Backend) {
    let db = TestDb::create(backend).await;
    let s = setup(&db).await;
    let subject = member(&s.sign_in(SCOPE).await, "access_token").to_owned();
    let subject = subject.as_str();
    let id_token_type = "urn:ietf:params:oauth:token-type:id_token";
    let cases: [(&[(&str, &str)], &str); 8] = [
        (&[("subject_token_type", ACCESS_TOKEN), ("resource", CALENDAR)], "subject_token is required"),
        (&[("subject_token", subject), ("resource", CALENDAR)], "subject_token_type is required"),
        (
            &[("subject_token", subject), ("subject_token_type", id_token_type), ("resource", CALENDAR)],
            "subject_token_type \"urn:ietf:params:oauth:token-type:id_token\" is not supported",
        ),
        (
            &[
                ("subject_token", subject),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
                ("resource", CALENDAR),
            ],
            "urn:ietf:params:oauth:token-type:jwt",
        ),
        (
            &[
                ("subject_token", subject),
                ("subject_token_type", ACCESS_TOKEN),
                ("resource", CALENDAR),
                ("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token"),
            ],
            "requested_token_type \"urn:ietf:params:oauth:token-type:refresh_token\" is not supported",
        ),
        (&[("subject_token", subject), ("subject_token_type", ACCESS_TOKEN)], "resource"),
        (
            &[
                ("subject_token", subject),
                ("subject_token_type", ACCESS_TOKEN),
                ("resource", CALENDAR),
                ("actor_token", subject),
                ("actor_token_type", ACCESS_TOKEN),
            ],
            "actor_token is not supported",
        ),
        (
            &[
                ("subject_token", subject),
                ("subject_token", subject),
                ("subject_token_type", ACCESS_TOKEN),
                ("resource", CALENDAR),
            ],
            "subject_token must not be sent more than once",
        ),
    ];
    for (form, says) in cases {
        let reply = s.post(&s.appointments, form).await;
        assert_refused(&reply, 400, "invalid_request", &[says], says);
    }
    // The right requested_token_type is fine.
    let reply = s.exchange(&s.appointments, subject, CALENDAR, &[("requested_token_type", ACCESS_TOKEN)]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

async fn the_grant_and_the_audiences_are_configurable_through_the_admin_api_registration_and_seed_export(
    backend: Backend,
) {
    const ADMIN: &str = "token-exchange-admin-token-with-plenty-of-entropy";
    const INITIAL: &str = "token-exchange-initial-access-token";
    let db = TestDb::create(backend).await;
    let server = TestServer::start_with(&db, |s| {
        s.registration = "token".into();
        s.registration_token = Some(INITIAL.into());
    })
    .await;
    server.store.insert_admin_token("ci", &lanyard::crypto::sha256_hex(ADMIN)).await.unwrap();
    let admin = |method: reqwest::Method, path: &str| {
        server.http.request(method, server.url(&format!("/admin/api{path}"))).bearer_auth(ADMIN)
    };
    for (identifier, scope) in [(CALENDAR, "read:schedule"), (APPOINTMENTS, "read:appointments")] {
        let body = json!({"identifier": identifier, "name": identifier, "scopes": [scope]});
        let response = admin(reqwest::Method::POST, "/apis").json(&body).send().await.unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }
    // A client allowed the grant through the admin API, under its RFC 8693 name.
    let body = json!({"client_id": "appointments-api", "grant_types": [GRANT], "scope": ""});
    let response = admin(reqwest::Method::POST, "/clients").json(&body).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["grant_types"], json!([GRANT]));

    // PATCH sets the introspection client and the audiences and keeps the rest.
    let item = format!(
        "/apis/item?identifier={}",
        url::form_urlencoded::byte_serialize(APPOINTMENTS.as_bytes()).collect::<String>()
    );
    let patch = json!({"introspection_client_id": "appointments-api", "token_exchange_audiences": [CALENDAR]});
    let response = admin(reqwest::Method::PATCH, &item).json(&patch).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let patched: Value = response.json().await.unwrap();
    assert_eq!(patched["token_exchange_audiences"], json!([CALENDAR]));
    assert_eq!(patched["scopes"][0]["name"], "read:appointments", "the scopes stay");
    let read: Value = admin(reqwest::Method::GET, &item).send().await.unwrap().json().await.unwrap();
    assert_eq!(read["token_exchange_audiences"], json!([CALENDAR]));
    // An unregistered audience, or the API itself, is a 422 naming the field.
    for audiences in [json!(["https://api.example.test/nowhere"]), json!([APPOINTMENTS])] {
        let patch = json!({"token_exchange_audiences": audiences});
        let response = admin(reqwest::Method::PATCH, &item).json(&patch).send().await.unwrap();
        assert_eq!(response.status(), 422, "{audiences}");
        let problem = response.text().await.unwrap();
        assert!(problem.contains("token_exchange_audiences"), "{problem}");
    }
    // A PUT of the GET representation round-trips.
    let response = admin(reqwest::Method::PUT, &item).json(&read).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());

    // Dynamic registration knows the grant by its RFC 8693 name too.
    let body = json!({"client_name": "Rooms API", "grant_types": [GRANT], "scope": "", "token_endpoint_auth_method": "client_secret_basic"});
    let response = server.http.post(server.url("/register")).bearer_auth(INITIAL).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let registered: Value = response.json().await.unwrap();
    assert_eq!(registered["grant_types"], json!([GRANT]));
    let body = json!({"client_name": "Public", "grant_types": [GRANT], "token_endpoint_auth_method": "none"});
    let response = server.http.post(server.url("/register")).bearer_auth(INITIAL).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 400, "a public client cannot exchange tokens");

    // `seed export` writes both, and the seed applies them again.
    let exported = lanyard::seed::export(&server.store).await.unwrap();
    assert!(exported.contains(&format!("token_exchange_audiences = [\"{CALENDAR}\"]")), "{exported}");
    assert!(exported.contains(GRANT), "{exported}");
    let seed = lanyard::seed::Seed::parse("exported.toml", &exported).expect("the export parses");
    let fresh = TestDb::create(backend).await;
    let other = TestServer::start(&fresh).await;
    seed.apply(&other.store, lanyard::registry::FetchPolicy::for_dev_mode(false)).await.expect("the export applies");
    let applied = other.store.api(APPOINTMENTS).await.unwrap().unwrap();
    assert_eq!(applied.token_exchange_audiences, [CALENDAR]);
    assert_eq!(applied.introspection_client_id.as_deref(), Some("appointments-api"));
}
