//! A submitted admin form, read by field name. Forms arrive as urlencoded pairs because a
//! field may repeat (a group of checkboxes), which a struct extractor cannot express.

use crate::registry::FieldErrors;
use crate::web::csrf;

/// The fields of one submitted form, in the order the browser sent them.
pub struct Fields(Vec<(String, String)>);

impl From<Vec<(String, String)>> for Fields {
    fn from(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }
}

impl Fields {
    /// The first value of `name`, as sent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, or "" when absent.
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().to_owned()
    }

    /// Every value of `name` (checkbox groups).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
    }

    /// Whether a checkbox was ticked (a browser sends nothing for an unticked one).
    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The submitted CSRF token.
    pub fn csrf_token(&self) -> Option<&str> {
        self.get(csrf::FIELD)
    }
}

/// `Some(value)` unless it is blank: a blank select or text box means "the default".
pub fn non_blank(value: &str) -> Option<String> {
    Some(value.trim().to_owned()).filter(|v| !v.is_empty())
}

/// The non-blank lines of a textarea, trimmed.
pub fn lines(raw: &str) -> Vec<String> {
    raw.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

/// A number of seconds typed into `field`: blank is `None` (the default applies); anything
/// but a whole number is reported against the field. The range is the spec's to check.
pub fn seconds(raw: &str, field: &'static str, errors: &mut FieldErrors) -> Option<i64> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    raw.parse().map_err(|_| errors.add(field, "must be a whole number of seconds")).ok()
}

/// Builds `path?name=value` with the value percent-encoded (API identifiers are URLs).
pub fn with_query(path: &str, name: &str, value: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new()).append_pair(name, value).finish();
    format!("{path}?{query}")
}

/// A path segment percent-encoded (client ids may contain `/`, `?` or `%`).
pub fn segment(value: &str) -> String {
    // byte_serialize writes a space as `+` (and a `+` as `%2B`): a path wants `%20`.
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>().replace('+', "%20")
}

/// Redirect-after-post: a 303 to `location`, so that reloading does not resubmit.
pub fn see_other(location: &str) -> actix_web::HttpResponse {
    actix_web::HttpResponse::SeeOther().insert_header((actix_web::http::header::LOCATION, location)).finish()
}

/// `?done=…` on the page a change redirects to: which confirmation to show. Only known
/// codes are shown (as fixed sentences), so that a link cannot put words on the page.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Done {
    pub done: Option<String>,
}

impl Done {
    /// The sentence for the code, among `known` (code, sentence) pairs.
    pub fn notice(&self, known: &[(&str, &'static str)]) -> Option<&'static str> {
        let code = self.done.as_deref()?;
        known.iter().find(|(c, _)| *c == code).map(|(_, sentence)| *sentence)
    }
}

/// The field errors of a refused registry operation; anything else becomes the page's error.
/// A conflict (the id exists already) is reported against `conflict_field`.
pub fn field_errors(
    error: crate::registry::RegistryError,
    conflict_field: &'static str,
) -> Result<FieldErrors, super::AdminError> {
    use crate::registry::RegistryError;
    match error {
        RegistryError::Invalid(errors) => Ok(errors),
        RegistryError::Conflict(what) => Ok(FieldErrors::single(conflict_field, format!("{what} already exists"))),
        other => Err(failure(other)),
    }
}

/// A refused registry operation that no form field explains (not found, or the store).
pub fn failure(error: crate::registry::RegistryError) -> super::AdminError {
    use crate::registry::RegistryError;
    match error {
        RegistryError::NotFound(what) => super::AdminError::NotFound(what),
        RegistryError::Store(e) => e.into(),
        other => {
            tracing::error!(error = %other, "registry refused an admin operation without a form to show it on");
            super::AdminError::Unavailable
        }
    }
}
