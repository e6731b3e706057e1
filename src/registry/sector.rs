//! The `sector_identifier_uri` document (OIDC Registration §5): a JSON array of URIs that
//! must include every redirect URI the client registers, fetched whenever a client with one
//! is created or its redirect URIs or sector change (on every path: `/register`, the admin
//! API and page, the CLI, the seed), so that a client can only claim a sector whose owner
//! lists it.

use super::FieldErrors;
use super::client::Client;
use crate::oauth::client_metadata::fetch_bounded;

/// The largest document accepted: a list of redirect URIs is small.
pub const MAX_SECTOR_DOCUMENT_BYTES: usize = 32 * 1024;

/// How registry operations may reach URLs a client supplied. The fetch itself is always
/// SSRF-safe (public addresses only, pinned, no redirects, bounded size and time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchPolicy {
    /// Dev mode (`--dev-login`): `http` and loopback addresses are allowed, for local tests.
    pub allow_loopback: bool,
}

impl FetchPolicy {
    /// The policy of a server in dev mode (`dev_login`) or not.
    pub fn for_dev_mode(dev_login: bool) -> Self {
        Self { allow_loopback: dev_login }
    }
}

/// Fetches `client`'s sector document, if it has a `sector_identifier_uri`, and checks that
/// it lists every redirect URI. Every failure (unreachable, not https, too large, not a
/// JSON array of strings, URIs missing) is an error on `sector_identifier_uri`, saying why:
/// `/register` answers it as `invalid_client_metadata`.
pub async fn check_sector_document(client: &Client, policy: FetchPolicy) -> Result<(), FieldErrors> {
    let Some(uri) = &client.sector_identifier_uri else { return Ok(()) };
    let fail = |why: String| FieldErrors::single("sector_identifier_uri", format!("{uri}: {why}"));
    let (body, _) =
        fetch_bounded(uri.as_str(), "the sector_identifier_uri", policy.allow_loopback, MAX_SECTOR_DOCUMENT_BYTES)
            .await
            .map_err(fail)?;
    let listed = parse_document(&body).map_err(fail)?;
    let missing: Vec<&str> =
        client.redirect_uris.iter().map(|r| r.as_str()).filter(|r| !listed.iter().any(|l| l == r)).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(fail(format!("its document does not list the redirect URI(s) {}", missing.join(", "))))
    }
}

/// OIDC Registration §5: "a file with a single JSON array of redirect_uri values".
fn parse_document(body: &[u8]) -> Result<Vec<String>, String> {
    serde_json::from_slice(body).map_err(|_| "its document is not a JSON array of URI strings".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_a_json_array_of_strings() {
        assert_eq!(parse_document(br#"["https://a.example/cb"]"#).unwrap(), ["https://a.example/cb"]);
        for bad in [&br#"{"redirect_uris": []}"#[..], br#"[1]"#, b"not json", br#""https://a.example/cb""#] {
            assert!(parse_document(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
