//! Form-encoded protocol parameters, where a parameter sent twice is an error
//! (RFC 6749 §3.1) unless it may repeat (`resource`, RFC 8707).

use std::collections::HashMap;

use crate::web::input_guard::has_control;

/// Decoded `application/x-www-form-urlencoded` parameters.
#[derive(Debug, Clone, Default)]
pub struct Params(HashMap<String, Vec<String>>);

impl Params {
    pub fn parse(encoded: &[u8]) -> Self {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(encoded) {
            map.entry(k.into_owned()).or_default().push(v.into_owned());
        }
        Self(map)
    }

    /// The one value of `name`; empty values count as absent (RFC 6749 §3.1). A value
    /// holding a control character is an error (Appendix A: visible characters only).
    pub fn single(&self, name: &str) -> Result<Option<&str>, ParamError> {
        match self.0.get(name).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([one]) if has_control(one) => Err(ParamError::ControlCharacters(name.to_owned())),
            Some([one]) => Ok(Some(one.as_str()).filter(|v| !v.is_empty())),
            Some(_) => Err(ParamError::Repeated(name.to_owned())),
        }
    }

    /// Replaces every value of `name` (a request object's member overriding the query's,
    /// OIDC Core §6.3.3).
    pub fn set(&mut self, name: &str, values: Vec<String>) {
        self.0.insert(name.to_owned(), values);
    }

    /// Drops `name` altogether.
    pub fn remove(&mut self, name: &str) {
        self.0.remove(name);
    }

    /// The parameters form-encoded again, names in order (how a pushed request is kept
    /// until `/authorize` reads it back with [`Params::parse`]).
    pub fn encode(&self) -> String {
        let mut names: Vec<&String> = self.0.keys().collect();
        names.sort();
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for name in names {
            for value in &self.0[name] {
                form.append_pair(name, value);
            }
        }
        form.finish()
    }

    /// Every non-empty value of a repeatable parameter.
    pub fn all(&self, name: &str) -> Result<Vec<&str>, ParamError> {
        let values = self.0.get(name).map(|v| v.iter().map(String::as_str).filter(|s| !s.is_empty()).collect());
        let values: Vec<&str> = values.unwrap_or_default();
        match values.iter().any(|v| has_control(v)) {
            true => Err(ParamError::ControlCharacters(name.to_owned())),
            false => Ok(values),
        }
    }
}

/// A parameter that cannot be read as one value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("{0} must not be sent more than once")]
    Repeated(String),
    #[error("{0} must not contain control characters")]
    ControlCharacters(String),
}

impl From<ParamError> for String {
    fn from(e: ParamError) -> Self {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_parameters_parse_back_to_the_same_values() {
        let params =
            Params::parse(b"scope=openid+profile&resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb&state=%26%3D");
        let again = Params::parse(params.encode().as_bytes());
        assert_eq!(again.single("scope").unwrap(), Some("openid profile"));
        assert_eq!(again.all("resource").unwrap(), vec!["https://a", "https://b"]);
        assert_eq!(again.single("state").unwrap(), Some("&="));
        assert_eq!(params.encode(), again.encode());
    }
}
