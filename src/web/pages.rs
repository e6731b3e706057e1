//! The HTML pages of the sign-in flow (askama templates, auto-escaped).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, ContentType};
use askama::Template;

use crate::registry::client::ClientDisplay;

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    /// Who the user signs in to: name, logo and links (RFC 7591 §2 display metadata).
    pub client: &'a ClientDisplay,
    /// The pending authorization request ("" when signing in to the admin page).
    pub request_id: &'a str,
    /// Where a sign-in without a client goes afterwards (a path under `/admin`, or the
    /// device page).
    pub return_to: Option<&'a str>,
    pub csrf_token: &'a str,
    pub username: &'a str,
    pub error: Option<String>,
    /// With `--dev-login`: the users to sign in as with one click (empty otherwise).
    pub personas: &'a [Persona],
}

/// A user offered as a one-click sign-in on a development login page.
#[derive(Debug, Clone)]
pub struct Persona {
    pub username: String,
    pub name: String,
    /// The user's `roles` claim, comma-separated ("" when it has none).
    pub roles: String,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub client: &'a ClientDisplay,
    pub username: &'a str,
    pub request_id: &'a str,
    pub csrf_token: &'a str,
    /// (scope, description)
    pub scopes: Vec<(String, String)>,
    /// API names and identifiers
    pub apis: Vec<String>,
    /// Claims the `claims` parameter asks for beyond the scopes.
    pub claims: Vec<String>,
}

/// The device page (RFC 8628 §3.3): where a signed-in user types their device's code.
#[derive(Template)]
#[template(path = "device.html")]
pub struct DeviceEntryPage<'a> {
    pub username: &'a str,
    /// What was typed, shown again after an error ("" for none).
    pub typed: &'a str,
    pub error: Option<String>,
}

/// The device page once a live code was entered: which client asks for what, with the
/// code to compare with the device's (RFC 8628 §5.4), and Approve or Deny.
#[derive(Template)]
#[template(path = "device_confirm.html")]
pub struct DeviceConfirmPage<'a> {
    pub client: &'a ClientDisplay,
    pub username: &'a str,
    /// The code as shown (`XXXX-XXXX`).
    pub user_code: &'a str,
    pub csrf_token: &'a str,
    /// (scope, description)
    pub scopes: Vec<(String, String)>,
    /// API names and identifiers
    pub apis: Vec<String>,
}

/// A page that only says something: errors, "signed out", ….
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub detail: Option<&'a str>,
}

/// Form Post Response Mode: a form that POSTs an authorization response to the client's
/// redirect_uri, submitted by `/static/form_post.js` or by hand.
#[derive(Template)]
#[template(path = "form_post.html")]
pub struct FormPostPage<'a> {
    /// The registered redirect_uri, exactly.
    pub action: &'a str,
    pub fields: Vec<(&'a str, &'a str)>,
}

/// Renders a template as an uncacheable HTML response.
pub fn html(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type(ContentType::html())
            .insert_header((CACHE_CONTROL, "no-store"))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "template failed to render");
            HttpResponse::InternalServerError().content_type(ContentType::plaintext()).body("page failed to render")
        }
    }
}

/// Lets a sign-in page load the client's logo: the site-wide policy (`default-src 'self'`)
/// is widened by `img-src` for the logo's exact origin, on this response only (so a client
/// can make the browser load an image from its own origin and nothing else, and nowhere
/// but the pages that show it).
pub fn allow_logo(response: &mut HttpResponse, client: &ClientDisplay) {
    let Some(origin) = client.logo_origin() else { return };
    let csp = format!("default-src 'self'; img-src 'self' {origin}; frame-ancestors 'none'; base-uri 'none'");
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&csp) {
        response.headers_mut().insert(actix_web::http::header::CONTENT_SECURITY_POLICY, value);
    }
}

/// Paths a browser navigates to (sign-in, consent, logout, the admin pages): their errors
/// are HTML pages; every other path speaks JSON.
pub fn is_browser_page(path: &str) -> bool {
    let under = |prefix: &str| path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    (under("/admin") && !under("/admin/api"))
        || ["/authorize", "/login", "/consent", "/logout", "/playground", "/device"].iter().any(|p| under(p))
}

/// An HTML page with a title and one sentence.
pub fn message(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    let mut response = html(status, &MessagePage { title, message, detail: None });
    // What the protocol recorder reads as the error of a failed exchange.
    response.extensions_mut().insert(crate::activity::PageMessage { title: title.into(), message: message.into() });
    response
}

/// "Sign out?" — shown when a logout request carries no id_token_hint (CSRF protected).
#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage<'a> {
    pub csrf_token: &'a str,
    pub client_name: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub post_logout_redirect_uri: Option<&'a str>,
    pub state: Option<&'a str>,
}

/// "Signed out", with one iframe per front-channel logout URI (Front-Channel Logout 1.0
/// §3) and, when the client asked for it, a link (and a meta refresh, no script: the CSP
/// forbids inline scripts) onward to its post-logout redirect URI.
#[derive(Template)]
#[template(path = "signed_out.html")]
pub struct SignedOutPage<'a> {
    pub frames: &'a [String],
    pub continue_to: Option<&'a str>,
    /// Seconds the iframes get before the meta refresh moves on.
    pub delay: u32,
}

#[cfg(test)]
mod page_path_tests {
    #[test]
    fn browser_pages_get_pages_and_apis_get_json() {
        for page in
            ["/authorize", "/authorize/continue", "/login", "/consent", "/logout", "/admin", "/admin/users", "/device"]
        {
            assert!(super::is_browser_page(page), "{page}");
        }
        for api in [
            "/token",
            "/userinfo",
            "/admin/api/clients",
            "/readyz",
            "/administrator",
            "/jwks",
            "/register/x",
            "/device_authorization",
        ] {
            assert!(!super::is_browser_page(api), "{api}");
        }
    }
}
