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
