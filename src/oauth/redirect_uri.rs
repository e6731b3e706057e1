//! Redirect URIs (RFC 6749 §3.1.2, RFC 9700 §4.1, RFC 8252 for native apps).

use std::fmt;

use url::{Host, Url};

/// A registrable redirect URI: absolute, no fragment; `https`, or `http` on a loopback
/// host, or a private-use scheme with a dot (`com.example.app:/cb`, RFC 8252 §7.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct RedirectUri(String);

impl RedirectUri {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = Url::parse(raw).map_err(|_| format!("{raw:?} is not an absolute URI"))?;
        if url.fragment().is_some() || raw.contains('#') {
            return Err(format!("{raw:?} must not contain a fragment"));
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(format!("{raw:?} must use https (http is allowed only for localhost/loopback)"));
            }
            scheme if scheme.contains('.') => {}
            scheme => {
                return Err(format!(
                    "{raw:?} uses scheme {scheme:?}: use https or a private-use scheme such as com.example.app"
                ));
            }
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host, normalized (lowercase), if the URI has one (a private-use scheme URI such
    /// as `com.example.app:/cb` has none): a pairwise client's sector (OIDC Core §8.1).
    pub fn host(&self) -> Option<String> {
        Url::parse(&self.0).ok()?.host_str().filter(|h| !h.is_empty()).map(str::to_owned)
    }

    /// Whether a redirect_uri from a request matches this registered one: exactly, except
    /// that an http loopback URI may use any port (RFC 8252 §7.3).
    pub fn matches(&self, requested: &str) -> bool {
        if self.0 == requested {
            return true;
        }
        let (Ok(registered), Ok(requested)) = (Url::parse(&self.0), Url::parse(requested)) else {
            return false;
        };
        registered.scheme() == "http"
            && requested.scheme() == "http"
            && is_loopback(&registered)
            && registered.host() == requested.host()
            && registered.path() == requested.path()
            && registered.query() == requested.query()
            && requested.fragment().is_none()
            && registered.username() == requested.username()
            && requested.password().is_none()
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for RedirectUri {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::RedirectUri;

    #[test]
    fn registrable_uris() {
        for good in
            ["https://app.example.test/cb", "http://127.0.0.1:9999/cb", "http://localhost/cb", "com.example.app:/cb"]
        {
            assert!(RedirectUri::parse(good).is_ok(), "{good} refused");
        }
        for bad in [
            "http://app.example.test/cb",
            "https://app.example.test/cb#x",
            "/cb",
            "javascript:alert(1)",
            "file:///etc/passwd",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn matching_is_exact_except_loopback_ports() {
        let web = RedirectUri::parse("https://app.example.test/cb").unwrap();
        assert!(web.matches("https://app.example.test/cb"));
        for other in [
            "https://app.example.test/cb/",
            "https://app.example.test/cb?x=1",
            "https://app.example.test:444/cb",
            "https://APP.example.test/cb",
        ] {
            assert!(!web.matches(other), "{other} matched");
        }
        let native = RedirectUri::parse("http://127.0.0.1/cb").unwrap();
        assert!(native.matches("http://127.0.0.1:53211/cb"));
        assert!(!native.matches("http://127.0.0.1:53211/other"));
        assert!(!native.matches("http://127.0.0.2:53211/cb"));
    }
}
