//! DPoP (RFC 9449): proofs at /token for every grant, bound access tokens (`cnf.jkt`,
//! `token_type: DPoP`), public clients' bound refresh tokens, `dpop_jkt` at /authorize,
//! userinfo with the DPoP scheme, server nonces, `dpop_bound_access_tokens`, introspection,
//! discovery, and `lanyard::verify`.
//!
//! The proofs are made here with `p256` (ES256) and `ed25519-dalek` (EdDSA) and a JWS
//! assembled by hand, not with Lanyard's JOSE library (josekit), so that a bug shared by
//! Lanyard's signer and verifier cannot hide.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lanyard::registry::client::ClientSpec;
use serde_json::{Map, Value, json};

use crate::both_backends;
use crate::flow::{self, API, Browser, Fixture, REDIRECT_URI};
use crate::helpers::{Backend, TestDb, TestServer};
use crate::token_lifecycle::{Creds, INTROSPECTOR, Reply, machine_client, member, now, post_form};

both_backends!(
    a_code_flow_with_dpop_issues_bound_tokens_that_userinfo_accepts_only_with_a_proof_of_the_key,
    client_credentials_with_an_eddsa_proof_issues_a_bound_token,
    a_public_clients_refresh_token_is_bound_to_its_key_and_a_confidential_clients_is_not,
    the_token_endpoint_refuses_every_defective_proof_with_invalid_dpop_proof,
    userinfo_refuses_proofs_without_or_with_a_wrong_ath_of_another_key_or_replayed,
    with_nonces_required_a_proof_without_one_gets_use_dpop_nonce_and_then_succeeds_with_it,
    a_client_registered_with_dpop_bound_access_tokens_is_refused_without_a_proof,
    dpop_bound_access_tokens_is_set_through_the_admin_api_and_kept_by_a_seed_export,
    a_code_requested_with_dpop_jkt_is_redeemed_only_with_a_proof_of_that_key,
    lanyard_verify_accepts_a_bound_token_with_a_good_proof_and_refuses_a_bad_one,
    a_token_exchange_with_a_proof_is_refused_not_answered_with_a_bearer_token,
);

// ---------------------------------------------------------------------------------------
// Proofs, made without josekit
// ---------------------------------------------------------------------------------------

/// A client's DPoP key.
enum Key {
    Es256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl Key {
    fn es256() -> Key {
        loop {
            // A random scalar (retried in the negligible case that it is out of range).
            if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&rand::random::<[u8; 32]>()) {
                return Key::Es256(key);
            }
        }
    }

    fn ed25519() -> Key {
        Key::Ed25519(ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>()))
    }

    fn alg(&self) -> &'static str {
        match self {
            Key::Es256(_) => "ES256",
            Key::Ed25519(_) => "EdDSA",
        }
    }

    fn jwk(&self) -> Value {
        match self {
            Key::Es256(key) => {
                let point = key.verifying_key().to_sec1_point(false);
                let bytes = point.as_bytes();
                json!({"kty": "EC", "crv": "P-256", "x": b64(&bytes[1..33]), "y": b64(&bytes[33..65])})
            }
            Key::Ed25519(key) => json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&key.verifying_key().to_bytes())}),
        }
    }

    /// The private key as a JWK (what a proof must never carry).
    fn private_jwk(&self) -> Value {
        let mut jwk = self.jwk();
        jwk["d"] = match self {
            Key::Es256(key) => Value::String(b64(&key.to_bytes())),
            Key::Ed25519(key) => Value::String(b64(&key.to_bytes())),
        };
        jwk
    }

    /// RFC 7638 §3: the required members, lexicographic order, no whitespace.
    fn thumbprint(&self) -> String {
        let jwk = self.jwk();
        let canonical = match self {
            Key::Es256(_) => format!(r#"{{"crv":"P-256","kty":"EC","x":{},"y":{}}}"#, jwk["x"], jwk["y"]),
            Key::Ed25519(_) => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":{}}}"#, jwk["x"]),
        };
        b64(&openssl::sha::sha256(canonical.as_bytes()))
    }

    fn sign(&self, input: &[u8]) -> Vec<u8> {
        match self {
            Key::Es256(key) => {
                use p256::ecdsa::signature::Signer;
                let signature: p256::ecdsa::Signature = key.sign(input);
                signature.to_bytes().to_vec()
            }
            Key::Ed25519(key) => {
                use ed25519_dalek::Signer;
                key.sign(input).to_bytes().to_vec()
            }
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A proof's header and claims, to be changed before signing.
struct Proof {
    header: Map<String, Value>,
    claims: Map<String, Value>,
}

impl Proof {
    /// A good proof of `key` for `method` to `url` made now, with a fresh jti.
    fn new(key: &Key, method: &str, url: &str) -> Proof {
        let header = json!({"typ": "dpop+jwt", "alg": key.alg(), "jwk": key.jwk()});
        let claims = json!({"jti": uuid::Uuid::new_v4().to_string(), "htm": method, "htu": url, "iat": now()});
        Proof { header: as_map(header), claims: as_map(claims) }
    }

    /// With `ath` for `access_token`.
    fn for_token(key: &Key, method: &str, url: &str, access_token: &str) -> Proof {
        let mut proof = Proof::new(key, method, url);
        proof.claims.insert("ath".into(), json!(b64(&openssl::sha::sha256(access_token.as_bytes()))));
        proof
    }

    fn claim(mut self, name: &str, value: Value) -> Proof {
        self.claims.insert(name.into(), value);
        self
    }

    fn without_claim(mut self, name: &str) -> Proof {
        self.claims.remove(name);
        self
    }

    fn header(mut self, name: &str, value: Value) -> Proof {
        self.header.insert(name.into(), value);
        self
    }

    /// base64url(header) . base64url(claims) (RFC 7515 §5.1).
    fn signing_input(&self) -> String {
        let part = |map: &Map<String, Value>| b64(Value::Object(map.clone()).to_string().as_bytes());
        format!("{}.{}", part(&self.header), part(&self.claims))
    }

    /// The compact JWS, signed by `key` (which may not be the key in the header).
    fn signed_by(&self, key: &Key) -> String {
        let input = self.signing_input();
        format!("{input}.{}", b64(&key.sign(input.as_bytes())))
    }

    /// Unsigned (`alg: none`): an empty signature.
    fn unsigned(&self) -> String {
        let input = self.signing_input();
        format!("{input}.")
    }

    /// MACed with HS256 under `secret`.
    fn maced(&self, secret: &[u8]) -> String {
        use openssl::{hash::MessageDigest, pkey::PKey, sign::Signer};
        let input = self.signing_input();
        let key = PKey::hmac(secret).unwrap();
        let mut signer = Signer::new(MessageDigest::sha256(), &key).unwrap();
        signer.update(input.as_bytes()).unwrap();
        format!("{input}.{}", b64(&signer.sign_to_vec().unwrap()))
    }
}

fn as_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object"),
    }
}

/// A good proof of `key`, signed by it.
fn proof(key: &Key, method: &str, url: &str) -> String {
    Proof::new(key, method, url).signed_by(key)
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// POSTs a form to /token with `creds` (Basic; a public client's id in the body when
/// `creds.secret` is empty) and the given DPoP headers.
async fn token_request(server: &TestServer, creds: &Creds, form: &[(&str, &str)], proofs: &[&str]) -> Reply {
    let mut form = form.to_vec();
    let mut request = server.http.post(server.url("/token"));
    if creds.secret.is_empty() {
        form.push(("client_id", &creds.id));
    } else {
        request = request.basic_auth(&creds.id, Some(&creds.secret));
    }
    for proof in proofs {
        request = request.header("DPoP", *proof);
    }
    Reply::read(request.form(&form).send().await.expect("sent")).await
}

async fn client_credentials(server: &TestServer, creds: &Creds, proofs: &[&str]) -> Reply {
    token_request(server, creds, &[("grant_type", "client_credentials"), ("resource", API)], proofs).await
}

/// GET /userinfo with `Authorization: {scheme} {token}` and the given DPoP header.
async fn userinfo(server: &TestServer, scheme: &str, token: &str, proof: Option<&str>) -> Reply {
    let mut request = server.http.get(server.url("/userinfo")).header("Authorization", format!("{scheme} {token}"));
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    Reply::read(request.send().await.expect("sent")).await
}

/// The claims of a JWT (unverified: the test reads what the server wrote).
fn claims(token: &str) -> Value {
    flow::decode_jwt(token).1
}

fn assert_bound(reply: &Reply, key: &Key, what: &str) {
    assert_eq!(reply.status, 200, "{what}: {}", reply.text);
    assert_eq!(reply.str("token_type"), "DPoP", "{what}");
    assert_eq!(claims(reply.str("access_token"))["cnf"], json!({"jkt": key.thumbprint()}), "{what}");
}

fn assert_refused(reply: &Reply, error: &str, what: &str) {
    assert_eq!(reply.status, 400, "{what}: {}", reply.text);
    assert_eq!(reply.error(), error, "{what}: {}", reply.text);
    assert!(reply.body["access_token"].is_null(), "{what}: nothing issued");
}

/// A confidential machine client of the appointments API.
async fn machine(server: &TestServer, adjust: impl FnOnce(&mut ClientSpec)) -> Creds {
    flow::fixture(server).await;
    machine_client(server, "robot", "read:appointments", adjust).await
}

/// Signs alice in with the fixture's client and returns the code.
async fn code_for(server: &TestServer, fx: &Fixture, extra: &[(&str, &str)]) -> String {
    let browser = Browser::new(server);
    let outcome = browser.sign_in(&flow::authorize_url(server, &fx.client_id, extra), "alice").await;
    outcome.params()["code"].clone()
}

fn code_form(code: &str) -> [(&str, &str); 4] {
    [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", flow::VERIFIER),
    ]
}

const OFFLINE: [(&str, &str); 2] = [("scope", "openid profile offline_access read:appointments"), ("resource", API)];

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

async fn a_code_flow_with_dpop_issues_bound_tokens_that_userinfo_accepts_only_with_a_proof_of_the_key(
    backend: Backend,
) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let discovery = server.get_json("/.well-known/openid-configuration").await;
    assert_eq!(discovery["dpop_signing_alg_values_supported"], json!(["ES256", "PS256", "RS256", "EdDSA"]));

    let introspector = machine_client(&server, INTROSPECTOR, "openid", |_| {}).await;
    let fx = flow::fixture_with(&server, |c| {
        c.grant_types = vec!["authorization_code".into(), "refresh_token".into()];
        c.scope = Some("openid profile email offline_access read:appointments".into());
    })
    .await;
    flow::set_api_introspector(&server, INTROSPECTOR).await;
    let web = Creds::from(&fx);
    let key = Key::es256();
    let code = code_for(&server, &fx, &OFFLINE).await;
    let token_url = server.url("/token");
    let tokens = token_request(&server, &web, &code_form(&code), &[&proof(&key, "POST", &token_url)]).await;
    assert_bound(&tokens, &key, "code exchange");
    let access = tokens.str("access_token").to_owned();

    // Userinfo: the DPoP scheme with a proof about this token (ath), of this key.
    let userinfo_url = server.url("/userinfo");
    let ok = userinfo(
        &server,
        "DPoP",
        &access,
        Some(&Proof::for_token(&key, "GET", &userinfo_url, &access).signed_by(&key)),
    )
    .await;
    assert_eq!(ok.status, 200, "{} {}", ok.challenge(), ok.text);
    assert_eq!(ok.str("sub"), fx.user_id);

    // The same token as a bearer token: refused, with a DPoP challenge (RFC 9449 §7.1).
    let bearer = userinfo(&server, "Bearer", &access, None).await;
    assert_eq!(bearer.status, 401, "{}", bearer.text);
    assert_eq!(bearer.error(), "invalid_token");
    let challenge = bearer.challenge();
    assert!(challenge.starts_with("DPoP ") && challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains("algs=\"ES256 PS256 RS256 EdDSA\""), "{challenge}");
    // Without any token: both schemes are offered.
    let anonymous = Reply::read(server.http.get(&userinfo_url).send().await.unwrap()).await;
    let offered: Vec<&str> =
        anonymous.headers.get_all("www-authenticate").iter().map(|v| v.to_str().unwrap()).collect();
    assert!(
        offered.iter().any(|c| c.starts_with("Bearer")) && offered.iter().any(|c| c.starts_with("DPoP")),
        "{offered:?}"
    );

    // Introspection (RFC 9449 §6.2): a DPoP token with its confirmation.
    let introspected = post_form(&server, "/introspect", Some(&introspector), &[("token", &access)]).await;
    assert_eq!(introspected.body["active"], json!(true), "{}", introspected.text);
    assert_eq!(introspected.str("token_type"), "DPoP");
    assert_eq!(introspected.body["cnf"], json!({"jkt": key.thumbprint()}));

    // An unbound token presented with the DPoP scheme is refused too.
    let plain_code = code_for(&server, &fx, &OFFLINE).await;
    let plain = token_request(&server, &web, &code_form(&plain_code), &[]).await;
    assert_eq!(plain.status, 200, "{}", plain.text);
    assert_eq!(plain.str("token_type"), "Bearer");
    assert!(claims(plain.str("access_token")).get("cnf").is_none());
    let plain_access = plain.str("access_token");
    let proof_for_plain = Proof::for_token(&key, "GET", &userinfo_url, plain_access).signed_by(&key);
    let refused = userinfo(&server, "DPoP", plain_access, Some(&proof_for_plain)).await;
    assert_eq!((refused.status, refused.error()), (401, "invalid_token"), "{}", refused.text);
    assert_eq!(userinfo(&server, "Bearer", plain_access, None).await.status, 200, "as a bearer token it works");
}

async fn client_credentials_with_an_eddsa_proof_issues_a_bound_token(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let robot = machine(&server, |_| {}).await;
    let key = Key::ed25519();
    let reply = client_credentials(&server, &robot, &[&proof(&key, "POST", &server.url("/token"))]).await;
    assert_bound(&reply, &key, "client_credentials with EdDSA");
    let es = Key::es256();
    let reply = client_credentials(&server, &robot, &[&proof(&es, "POST", &server.url("/token"))]).await;
    assert_bound(&reply, &es, "client_credentials with ES256");
    let bearer = client_credentials(&server, &robot, &[]).await;
    assert_eq!(bearer.status, 200, "{}", bearer.text);
    assert_eq!(bearer.str("token_type"), "Bearer", "no proof: a bearer token, as before");
}

async fn a_public_clients_refresh_token_is_bound_to_its_key_and_a_confidential_clients_is_not(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture_with(&server, |c| {
        c.token_endpoint_auth_method = Some("none".into());
        c.grant_types = vec!["authorization_code".into(), "refresh_token".into()];
        c.scope = Some("openid profile offline_access read:appointments".into());
    })
    .await;
    let public = Creds { id: fx.client_id.clone(), secret: String::new() };
    let token_url = server.url("/token");
    let key = Key::es256();
    let code = code_for(&server, &fx, &OFFLINE).await;
    let tokens = token_request(&server, &public, &code_form(&code), &[&proof(&key, "POST", &token_url)]).await;
    assert_bound(&tokens, &key, "public client's code exchange");
    let refresh = member(&tokens.body, "refresh_token").to_owned();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];

    let other = Key::es256();
    let stolen = token_request(&server, &public, &form, &[&proof(&other, "POST", &token_url)]).await;
    assert_refused(&stolen, "invalid_grant", "a refresh with another key");
    let naked = token_request(&server, &public, &form, &[]).await;
    assert_refused(&naked, "invalid_dpop_proof", "a refresh without a proof");
    // Both refusals left the token usable for its key holder.
    let refreshed = token_request(&server, &public, &form, &[&proof(&key, "POST", &token_url)]).await;
    assert_bound(&refreshed, &key, "a refresh with the key");
    let successor = member(&refreshed.body, "refresh_token").to_owned();
    let next = [("grant_type", "refresh_token"), ("refresh_token", successor.as_str())];
    let stolen = token_request(&server, &public, &next, &[&proof(&other, "POST", &token_url)]).await;
    assert_refused(&stolen, "invalid_grant", "the rotated token keeps the binding");

    // A confidential client's refresh token is not bound (RFC 9449 §5): its own
    // authentication protects it; without a proof the refresh gives a bearer token.
    let db2 = TestDb::create(backend).await;
    let server2 = TestServer::start(&db2).await;
    let fx2 = flow::fixture_with(&server2, |c| {
        c.grant_types = vec!["authorization_code".into(), "refresh_token".into()];
        c.scope = Some("openid profile offline_access read:appointments".into());
    })
    .await;
    let web = Creds::from(&fx2);
    let code = code_for(&server2, &fx2, &OFFLINE).await;
    let tokens =
        token_request(&server2, &web, &code_form(&code), &[&proof(&key, "POST", &server2.url("/token"))]).await;
    assert_bound(&tokens, &key, "confidential client's code exchange");
    let refresh = member(&tokens.body, "refresh_token").to_owned();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
    let unbound = token_request(&server2, &web, &form, &[]).await;
    assert_eq!(unbound.status, 200, "{}", unbound.text);
    assert_eq!(unbound.str("token_type"), "Bearer");
}

async fn the_token_endpoint_refuses_every_defective_proof_with_invalid_dpop_proof(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let robot = machine(&server, |_| {}).await;
    let url = server.url("/token");
    let key = Key::es256();
    let other = Key::es256();
    let leeway = server.config.clock_leeway;

    let replayed = proof(&key, "POST", &url);
    assert_bound(&client_credentials(&server, &robot, &[&replayed]).await, &key, "the first use of a proof");
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("the same proof again (same jti)", vec![replayed.clone()]),
        ("htu of another endpoint", vec![proof(&key, "POST", &server.url("/userinfo"))]),
        ("htu of another server", vec![proof(&key, "POST", "https://elsewhere.example.test/token")]),
        ("htm GET for a POST", vec![proof(&key, "GET", &url)]),
        (
            "iat too old",
            vec![Proof::new(&key, "POST", &url).claim("iat", json!(now() - 61 - leeway - 5)).signed_by(&key)],
        ),
        (
            "iat in the future",
            vec![Proof::new(&key, "POST", &url).claim("iat", json!(now() + 61 + leeway + 5)).signed_by(&key)],
        ),
        ("no iat", vec![Proof::new(&key, "POST", &url).without_claim("iat").signed_by(&key)]),
        ("no jti", vec![Proof::new(&key, "POST", &url).without_claim("jti").signed_by(&key)]),
        ("signed by another key than its jwk", vec![Proof::new(&key, "POST", &url).signed_by(&other)]),
        ("alg none", vec![Proof::new(&key, "POST", &url).header("alg", json!("none")).unsigned()]),
        (
            "HS256",
            vec![
                Proof::new(&key, "POST", &url).header("alg", json!("HS256")).maced(b"a shared secret of 32 bytes, ok!"),
            ],
        ),
        (
            "the private key in jwk",
            vec![Proof::new(&key, "POST", &url).header("jwk", key.private_jwk()).signed_by(&key)],
        ),
        ("typ JWT", vec![Proof::new(&key, "POST", &url).header("typ", json!("JWT")).signed_by(&key)]),
        (
            "no jwk",
            vec![{
                let mut p = Proof::new(&key, "POST", &url);
                p.header.remove("jwk");
                p.signed_by(&key)
            }],
        ),
        (
            "an EC key declared EdDSA",
            vec![Proof::new(&key, "POST", &url).header("alg", json!("EdDSA")).signed_by(&key)],
        ),
        ("two DPoP headers", vec![proof(&key, "POST", &url), proof(&key, "POST", &url)]),
        ("not a JWT", vec!["not-a-jwt".into()]),
    ];
    for (what, proofs) in &cases {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let reply = client_credentials(&server, &robot, &proofs).await;
        assert_refused(&reply, "invalid_dpop_proof", what);
        assert!(!reply.body["error_description"].as_str().unwrap_or("").is_empty(), "{what}: says why");
    }
    // A query string on htu is ignored, and the URL is compared normalized (§4.3).
    let normalized = url.replace("http://", "HTTP://").replace("/token", "/./token") + "?x=1#frag";
    let reply = client_credentials(&server, &robot, &[&proof(&key, "POST", &normalized)]).await;
    assert_bound(&reply, &key, "htu with an upper-case scheme, a dot segment, a query and a fragment");
}

async fn userinfo_refuses_proofs_without_or_with_a_wrong_ath_of_another_key_or_replayed(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;
    let web = Creds::from(&fx);
    let key = Key::es256();
    let code = code_for(&server, &fx, &[("resource", API)]).await;
    let tokens = token_request(&server, &web, &code_form(&code), &[&proof(&key, "POST", &server.url("/token"))]).await;
    assert_bound(&tokens, &key, "code exchange");
    let access = tokens.str("access_token").to_owned();
    let url = server.url("/userinfo");
    let other = Key::es256();
    let good = Proof::for_token(&key, "GET", &url, &access).signed_by(&key);
    assert_eq!(userinfo(&server, "DPoP", &access, Some(&good)).await.status, 200);
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no ath", Some(proof(&key, "GET", &url)), "invalid_dpop_proof"),
        (
            "ath of another token",
            Some(Proof::for_token(&key, "GET", &url, "another-token").signed_by(&key)),
            "invalid_dpop_proof",
        ),
        ("a replayed proof", Some(good.clone()), "invalid_dpop_proof"),
        (
            "htm POST for a GET",
            Some(Proof::for_token(&key, "POST", &url, &access).signed_by(&key)),
            "invalid_dpop_proof",
        ),
        (
            "htu of the token endpoint",
            Some(Proof::for_token(&key, "GET", &server.url("/token"), &access).signed_by(&key)),
            "invalid_dpop_proof",
        ),
        ("no DPoP header", None, "invalid_dpop_proof"),
        (
            "a good proof of another key",
            Some(Proof::for_token(&other, "GET", &url, &access).signed_by(&other)),
            "invalid_token",
        ),
    ];
    for (what, proof, error) in cases {
        let reply = userinfo(&server, "DPoP", &access, proof.as_deref()).await;
        assert_eq!(reply.status, 401, "{what}: {}", reply.text);
        assert_eq!(reply.error(), error, "{what}: {}", reply.text);
        let challenge = reply.challenge();
        assert!(
            challenge.starts_with("DPoP ") && challenge.contains(&format!("error=\"{error}\"")),
            "{what}: {challenge}"
        );
        assert!(challenge.contains("algs=\""), "{what}: {challenge}");
    }
}

async fn with_nonces_required_a_proof_without_one_gets_use_dpop_nonce_and_then_succeeds_with_it(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start_with(&db, |s| s.dpop_nonce = true).await;
    let fx = flow::fixture(&server).await;
    let web = Creds::from(&fx);
    let key = Key::es256();
    let url = server.url("/token");
    let code = code_for(&server, &fx, &[("resource", API)]).await;

    // §8: 400 use_dpop_nonce, with the nonce to use in DPoP-Nonce; the code is not spent.
    let first = token_request(&server, &web, &code_form(&code), &[&proof(&key, "POST", &url)]).await;
    assert_refused(&first, "use_dpop_nonce", "a proof without a nonce");
    let nonce = first.header("dpop-nonce").expect("a DPoP-Nonce header").to_owned();
    let wrong = Proof::new(&key, "POST", &url).claim("nonce", json!("not-a-nonce-of-this-server")).signed_by(&key);
    let refused = token_request(&server, &web, &code_form(&code), &[&wrong]).await;
    assert_refused(&refused, "use_dpop_nonce", "a nonce this server never issued");
    let with_nonce = Proof::new(&key, "POST", &url).claim("nonce", json!(nonce)).signed_by(&key);
    let tokens = token_request(&server, &web, &code_form(&code), &[&with_nonce]).await;
    assert_bound(&tokens, &key, "the retry with the nonce");
    assert_eq!(tokens.header("dpop-nonce"), Some(nonce.as_str()), "every answer carries the current nonce");
    let access = tokens.str("access_token").to_owned();

    // §9: userinfo too, with a 401 and a DPoP challenge.
    let userinfo_url = server.url("/userinfo");
    let without = Proof::for_token(&key, "GET", &userinfo_url, &access).signed_by(&key);
    let reply = userinfo(&server, "DPoP", &access, Some(&without)).await;
    assert_eq!((reply.status, reply.error()), (401, "use_dpop_nonce"), "{}", reply.text);
    assert!(reply.challenge().starts_with("DPoP ") && reply.challenge().contains("use_dpop_nonce"));
    let nonce = reply.header("dpop-nonce").expect("a DPoP-Nonce header").to_owned();
    let with = Proof::for_token(&key, "GET", &userinfo_url, &access).claim("nonce", json!(nonce)).signed_by(&key);
    let reply = userinfo(&server, "DPoP", &access, Some(&with)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

async fn a_client_registered_with_dpop_bound_access_tokens_is_refused_without_a_proof(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start_with(&db, |s| s.registration_token = Some("initial-token".into())).await;
    flow::fixture(&server).await;
    let registered = Reply::read(
        server
            .http
            .post(server.url("/register"))
            .bearer_auth("initial-token")
            .json(&json!({
                "client_name": "DPoP robot",
                "grant_types": ["client_credentials"],
                "scope": "read:appointments",
                "dpop_bound_access_tokens": true,
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    assert_eq!(registered.body["dpop_bound_access_tokens"], json!(true), "echoed (RFC 7591 §3.2.1)");
    let robot = Creds { id: registered.str("client_id").into(), secret: registered.str("client_secret").into() };
    let refused = client_credentials(&server, &robot, &[]).await;
    assert_refused(&refused, "invalid_dpop_proof", "no proof from a dpop_bound_access_tokens client");
    let key = Key::ed25519();
    let reply = client_credentials(&server, &robot, &[&proof(&key, "POST", &server.url("/token"))]).await;
    assert_bound(&reply, &key, "with a proof");
    // The setting is visible (and stored) like every other client field.
    let stored = server.store.client(&robot.id).await.unwrap().expect("the client");
    assert!(stored.dpop_bound_access_tokens);
}

async fn dpop_bound_access_tokens_is_set_through_the_admin_api_and_kept_by_a_seed_export(backend: Backend) {
    const ADMIN: &str = "dpop-admin-api-token-with-plenty-of-entropy-0123456789";
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    server.store.insert_admin_token("ci", &lanyard::crypto::sha256_hex(ADMIN)).await.expect("admin token stored");
    let robot = machine(&server, |_| {}).await;
    assert_eq!(client_credentials(&server, &robot, &[]).await.status, 200, "not required yet");
    let patched = Reply::read(
        server
            .http
            .patch(server.url(&format!("/admin/api/clients/{}", robot.id)))
            .bearer_auth(ADMIN)
            .json(&json!({"dpop_bound_access_tokens": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["dpop_bound_access_tokens"], json!(true));
    // The change holds at once (the registry cache is invalidated).
    assert_refused(&client_credentials(&server, &robot, &[]).await, "invalid_dpop_proof", "after the PATCH");
    let exported = lanyard::seed::export(&server.store).await.expect("seed export");
    assert!(exported.contains("dpop_bound_access_tokens = true"), "{exported}");
}

async fn a_code_requested_with_dpop_jkt_is_redeemed_only_with_a_proof_of_that_key(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;
    let web = Creds::from(&fx);
    let key = Key::es256();
    let other = Key::es256();
    let url = server.url("/token");
    let jkt = key.thumbprint();
    let extra = [("resource", API), ("dpop_jkt", jkt.as_str())];

    let code = code_for(&server, &fx, &extra).await;
    let reply = token_request(&server, &web, &code_form(&code), &[&proof(&other, "POST", &url)]).await;
    assert_refused(&reply, "invalid_dpop_proof", "a proof of another key than dpop_jkt");
    let code = code_for(&server, &fx, &extra).await;
    let reply = token_request(&server, &web, &code_form(&code), &[]).await;
    assert_refused(&reply, "invalid_dpop_proof", "no proof for a dpop_jkt code");
    let code = code_for(&server, &fx, &extra).await;
    let reply = token_request(&server, &web, &code_form(&code), &[&proof(&key, "POST", &url)]).await;
    assert_bound(&reply, &key, "the key named by dpop_jkt");

    // A malformed dpop_jkt is an error sent back to the client.
    let browser = Browser::new(&server);
    let outcome =
        browser.sign_in(&flow::authorize_url(&server, &fx.client_id, &[("dpop_jkt", "short")]), "alice").await;
    assert_eq!(outcome.params()["error"], "invalid_request");
}

async fn lanyard_verify_accepts_a_bound_token_with_a_good_proof_and_refuses_a_bad_one(backend: Backend) {
    use lanyard::verify::{DpopFailure, Rejection, RequestParts, Verifier, VerifyError};
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let robot = machine(&server, |_| {}).await;
    let key = Key::es256();
    let reply = client_credentials(&server, &robot, &[&proof(&key, "POST", &server.url("/token"))]).await;
    assert_bound(&reply, &key, "client_credentials");
    let token = reply.str("access_token").to_owned();
    let verifier = Verifier::discover(&server.base, API).await.expect("discovery");
    let api_url = "https://api.example.test/appointments/today";

    let good = Proof::for_token(&key, "GET", api_url, &token).signed_by(&key);
    let claims = verifier.verify_dpop(&token, &good, "GET", api_url).await.expect("a good proof");
    assert_eq!(claims.sub, robot.id);
    assert!(
        matches!(verifier.verify_dpop(&token, &good, "GET", api_url).await, Err(DpopFailure::Proof(_))),
        "replayed"
    );
    let elsewhere = Proof::for_token(&key, "GET", "https://api.example.test/other", &token).signed_by(&key);
    assert!(
        matches!(verifier.verify_dpop(&token, &elsewhere, "GET", api_url).await, Err(DpopFailure::Proof(_))),
        "htu"
    );
    let no_ath = proof(&key, "GET", api_url);
    assert!(matches!(verifier.verify_dpop(&token, &no_ath, "GET", api_url).await, Err(DpopFailure::Proof(_))), "ath");
    let other = Key::ed25519();
    let stranger = Proof::for_token(&other, "GET", api_url, &token).signed_by(&other);
    assert!(matches!(verifier.verify_dpop(&token, &stranger, "GET", api_url).await, Err(DpopFailure::Token(_))), "key");

    // The bound token as a bearer token: refused, by verify and by authorize.
    assert_eq!(verifier.verify(&token).await.unwrap_err(), Rejection::DpopBound);
    let bearer = format!("Bearer {token}");
    let parts = RequestParts { authorization: Some(&bearer), dpop: &[], method: "GET", url: api_url };
    let refused = verifier.authorize_parts(&parts, &[]).await.unwrap_err();
    assert!(matches!(refused, VerifyError::Dpop { failure: DpopFailure::Token(_), .. }), "{refused:?}");
    assert!(refused.www_authenticate().starts_with("DPoP realm=\"api\", error=\"invalid_token\""));
    // With the DPoP scheme and a fresh proof: accepted, scopes checked as for bearer tokens.
    let scheme = format!("DPoP {token}");
    let fresh = Proof::for_token(&key, "GET", api_url, &token).signed_by(&key);
    let parts = RequestParts { authorization: Some(&scheme), dpop: &[&fresh], method: "GET", url: api_url };
    assert!(verifier.authorize_parts(&parts, &["read:appointments"]).await.is_ok());

    // An API requiring DPoP refuses a bearer token that would otherwise pass.
    let plain = client_credentials(&server, &robot, &[]).await;
    let plain = format!("Bearer {}", plain.str("access_token"));
    let strict = Verifier::discover(&server.base, API).await.expect("discovery").require_dpop();
    let parts = RequestParts { authorization: Some(&plain), dpop: &[], method: "GET", url: api_url };
    assert!(verifier.authorize_parts(&parts, &[]).await.is_ok(), "the lenient verifier takes it");
    let refused = strict.authorize_parts(&parts, &[]).await.unwrap_err();
    assert!(matches!(refused, VerifyError::Dpop { failure: DpopFailure::Token(_), .. }), "{refused:?}");
}

/// Token exchange issues bearer tokens only: a proof there is refused by name, instead of
/// the client getting a weaker token than it asked for.
async fn a_token_exchange_with_a_proof_is_refused_not_answered_with_a_bearer_token(backend: Backend) {
    const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let robot = machine(&server, |c| c.grant_types = vec![EXCHANGE.into()]).await;
    let form = [
        ("grant_type", EXCHANGE),
        ("subject_token", "any"),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
        ("resource", API),
    ];
    let key = Key::es256();
    let reply = token_request(&server, &robot, &form, &[&proof(&key, "POST", &server.url("/token"))]).await;
    assert_eq!((reply.status, reply.error()), (400, "invalid_request"), "{}", reply.text);
    assert!(reply.str("error_description").contains("bearer tokens only"), "{}", reply.text);
    // Without the proof the same request reaches the grant (and is refused for its token).
    let reply = token_request(&server, &robot, &form, &[]).await;
    assert_ne!(reply.error(), "invalid_request", "{}", reply.text);
}
