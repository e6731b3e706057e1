//! Helpers that play the user's browser and a relying party through the code flow.

use std::collections::HashMap;

use lanyard::registry::{self, api::ApiSpec, api::ScopeSpec, client::ClientSpec, user::UserSpec};
use serde_json::Value;

use crate::helpers::TestServer;

pub const API: &str = "https://api.example.test/appointments";
pub const REDIRECT_URI: &str = "http://127.0.0.1:9999/cb";
pub const PASSWORD: &str = "alice-password";

/// A user, an API and a confidential client, as most tests need them.
pub struct Fixture {
    pub client_id: String,
    pub client_secret: String,
    pub user_id: String,
}

/// Registers `alice`, the appointments API and a confidential `web` client.
pub async fn fixture(server: &TestServer) -> Fixture {
    fixture_with(server, |_| {}).await
}

pub async fn fixture_with(server: &TestServer, adjust: impl FnOnce(&mut ClientSpec)) -> Fixture {
    let user = add_user(server, "alice").await;
    registry::create_api(
        &server.store,
        ApiSpec {
            identifier: API.into(),
            name: "Appointments".into(),
            scopes: vec![ScopeSpec::Name("read:appointments".into()), ScopeSpec::Name("write:appointments".into())],
            ..Default::default()
        },
    )
    .await
    .expect("API registered");
    let mut spec = ClientSpec {
        client_id: Some("web".into()),
        client_name: Some("Web app".into()),
        redirect_uris: vec![REDIRECT_URI.into()],
        scope: Some("openid profile email read:appointments".into()),
        ..Default::default()
    };
    adjust(&mut spec);
    let client = registry::create_client(&server.store, spec).await.expect("client registered");
    Fixture { client_id: client.client.client_id, client_secret: client.secret.unwrap_or_default(), user_id: user }
}

/// Makes `client_id` the introspection client of the fixture's appointments API ([`API`]).
pub async fn set_api_introspector(server: &TestServer, client_id: &str) {
    registry::update_api(
        &server.store,
        ApiSpec {
            identifier: API.into(),
            name: "Appointments".into(),
            scopes: vec![ScopeSpec::Name("read:appointments".into()), ScopeSpec::Name("write:appointments".into())],
            introspection_client_id: Some(client_id.into()),
            ..Default::default()
        },
    )
    .await
    .expect("API updated");
}

/// Adds a user with [`PASSWORD`] and a name and email; returns the user id.
pub async fn add_user(server: &TestServer, username: &str) -> String {
    let mut claims = serde_json::Map::new();
    claims.insert("name".into(), Value::String(format!("{username} Example")));
    claims.insert("email".into(), Value::String(format!("{username}@example.test")));
    claims.insert("email_verified".into(), Value::Bool(true));
    let user = registry::create_user(
        &server.store,
        UserSpec { username: username.into(), password: PASSWORD.into(), is_admin: false, claims },
    )
    .await
    .expect("user registered");
    user.id
}

/// The value of a hidden (or any) input named `name` in an HTML page.
pub fn form_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&#34;", "\"").replace("&amp;", "&"))
}

/// Query parameters of a redirect's Location.
pub fn location_params(response: &reqwest::Response) -> (String, HashMap<String, String>) {
    let location = response.headers().get("location").expect("a Location header").to_str().unwrap().to_owned();
    let url = url::Url::parse(&location)
        .unwrap_or_else(|_| url::Url::parse("http://relative.invalid").unwrap().join(&location).unwrap());
    let params = url.query_pairs().into_owned().collect();
    (location, params)
}

/// A browser: follows Lanyard's pages (login, consent) with its own cookie jar.
pub struct Browser<'a> {
    pub server: &'a TestServer,
    pub http: reqwest::Client,
}

/// Where a browser ended up after following Lanyard's redirects.
pub enum Outcome {
    /// An HTML page from Lanyard (login, consent, error).
    Page { status: u16, html: String },
    /// A redirect out of Lanyard, to the client.
    Redirect { location: String, params: HashMap<String, String> },
}

impl Outcome {
    pub fn params(&self) -> &HashMap<String, String> {
        match self {
            Outcome::Redirect { params, .. } => params,
            Outcome::Page { status, html } => {
                panic!("expected a redirect to the client, got page {status}: {html}")
            }
        }
    }

    pub fn html(&self) -> &str {
        match self {
            Outcome::Page { html, .. } => html,
            Outcome::Redirect { location, .. } => {
                panic!("expected a page, got a redirect to {location}")
            }
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Outcome::Page { status, .. } => *status,
            Outcome::Redirect { .. } => 303,
        }
    }
}

impl<'a> Browser<'a> {
    pub fn new(server: &'a TestServer) -> Self {
        let http =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).cookie_store(true).build().unwrap();
        Browser { server, http }
    }

    /// Follows redirects while they stay on Lanyard.
    pub async fn follow(&self, mut response: reqwest::Response) -> Outcome {
        loop {
            let status = response.status().as_u16();
            if !(300..400).contains(&status) {
                return Outcome::Page { status, html: response.text().await.unwrap() };
            }
            let (location, params) = location_params(&response);
            let next = if location.starts_with('/') { self.server.url(&location) } else { location.clone() };
            if !next.starts_with(&self.server.base) {
                return Outcome::Redirect { location, params };
            }
            response = self.http.get(next).send().await.unwrap();
        }
    }

    pub async fn open(&self, url: &str) -> Outcome {
        let response = self.http.get(url).send().await.unwrap();
        self.follow(response).await
    }

    /// Submits the login form shown on `page` with these credentials.
    pub async fn login(&self, page: &Outcome, username: &str, password: &str) -> Outcome {
        let html = page.html();
        let form = [
            ("csrf_token", form_field(html, "csrf_token").expect("csrf_token field")),
            ("request_id", form_field(html, "request_id").expect("request_id field")),
            ("username", username.to_owned()),
            ("password", password.to_owned()),
        ];
        let response = self.http.post(self.server.url("/login")).form(&form).send().await.unwrap();
        self.follow(response).await
    }

    /// Answers the consent page shown on `page`.
    pub async fn consent(&self, page: &Outcome, decision: &str) -> Outcome {
        let html = page.html();
        let form = [
            ("csrf_token", form_field(html, "csrf_token").expect("csrf_token field")),
            ("request_id", form_field(html, "request_id").expect("request_id field")),
            ("decision", decision.to_owned()),
        ];
        let response = self.http.post(self.server.url("/consent")).form(&form).send().await.unwrap();
        self.follow(response).await
    }

    /// Opens an authorization URL, signs in as `username` and allows consent if asked.
    pub async fn sign_in(&self, url: &str, username: &str) -> Outcome {
        let page = self.open(url).await;
        let mut outcome = match &page {
            Outcome::Page { html, .. } if html.contains("name=\"password\"") => {
                self.login(&page, username, PASSWORD).await
            }
            _ => page,
        };
        if let Outcome::Page { html, .. } = &outcome
            && html.contains("value=\"allow\"")
        {
            outcome = self.consent(&outcome, "allow").await;
        }
        outcome
    }
}

/// base64url(SHA-256(verifier)).
pub fn s256(verifier: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(openssl::sha::sha256(verifier.as_bytes()))
}

pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-verifier";

/// An /authorize URL for the fixture's client with PKCE and the given extra parameters.
pub fn authorize_url(server: &TestServer, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&server.url("/authorize")).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", REDIRECT_URI)
            .append_pair("scope", "openid profile email")
            .append_pair("state", "xyz")
            .append_pair("nonce", "n-0S6_WzA2Mj")
            .append_pair("code_challenge", &s256(VERIFIER))
            .append_pair("code_challenge_method", "S256");
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    // Later values of a parameter replace earlier ones, so tests can override defaults.
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (k, v) in url.query_pairs().into_owned() {
        if k != "resource"
            && let Some(existing) = pairs.iter_mut().find(|(key, _)| *key == k)
        {
            existing.1 = v;
            continue;
        }
        pairs.push((k, v));
    }
    url.query_pairs_mut().clear().extend_pairs(pairs.iter().filter(|(_, v)| !v.is_empty()));
    url.to_string()
}

/// Exchanges a code at /token with client_secret_basic; returns status and JSON body.
pub async fn exchange(server: &TestServer, fx: &Fixture, code: &str, verifier: &str) -> (u16, Value) {
    let response = server
        .http
        .post(server.url("/token"))
        .basic_auth(&fx.client_id, Some(&fx.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Decodes a JWT's header and claims without verifying (tests check them).
pub fn decode_jwt(token: &str) -> (Value, Value) {
    use base64::Engine;
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWS");
    let decode = |p: &str| -> Value {
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
    };
    (decode(parts[0]), decode(parts[1]))
}
