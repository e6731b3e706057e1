//! The issuer identifier (OIDC Discovery §3, RFC 8414 §2).

use url::Url;

/// An issuer URL: absolute, http(s), no query and no fragment, kept without a trailing
/// slash so that `iss` in tokens and discovery match byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    value: String,
    /// `host[:port]` as a browser's `Host` header names it (default ports left out).
    authority: String,
    loopback: bool,
    https: bool,
}

impl Issuer {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = Url::parse(raw.trim()).map_err(|e| format!("must be an absolute URL ({e}), got {raw:?}"))?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            other => {
                return Err(format!("must use https (or http for development), got {other}:"));
            }
        };
        if url.query().is_some() {
            return Err("must not have a query string (RFC 8414 §2)".into());
        }
        if url.fragment().is_some() {
            return Err("must not have a fragment (RFC 8414 §2)".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not contain credentials".into());
        }
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => return Err("must have a host".into()),
        };
        let value = url.as_str().trim_end_matches('/').to_owned();
        let host = url.host_str().unwrap_or_default();
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        Ok(Self { value, authority, loopback, https })
    }

    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// `host[:port]`, as the `Host` header of a request addressed to the issuer reads.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Whether the issuer's host is this machine (localhost, 127.0.0.0/8, ::1).
    pub fn is_loopback(&self) -> bool {
        self.loopback
    }

    /// Whether cookies must carry `Secure`.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// The absolute URL of an endpoint path such as `/token`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.value, path)
    }
}

#[cfg(test)]
mod tests {
    use super::Issuer;

    #[test]
    fn issuer_is_kept_exactly_without_trailing_slash() {
        assert_eq!(Issuer::parse("http://localhost:8080/").unwrap().as_str(), "http://localhost:8080");
        assert_eq!(Issuer::parse("https://id.example.test/tenant").unwrap().as_str(), "https://id.example.test/tenant");
    }

    #[test]
    fn issuer_refuses_queries_fragments_and_other_schemes() {
        for bad in ["https://id.example.test?x=1", "https://id.example.test#f", "ftp://id", "/relative"] {
            assert!(Issuer::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn loopback_issuers_are_recognised() {
        assert!(Issuer::parse("http://127.0.0.1:9000").unwrap().is_loopback());
        assert!(Issuer::parse("http://[::1]:9000").unwrap().is_loopback());
        assert!(!Issuer::parse("https://id.example.test").unwrap().is_loopback());
    }
}
