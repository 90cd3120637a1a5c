//! The one error type of the per-route policies (cache, rate limit, CORS): which field is wrong
//! and why. Policies validate while they are deserialized, so a bad policy fails when the
//! adapter loads the configuration, never at request time.

use core::fmt;

/// A policy field that failed validation. `field` is the field's name as written in the
/// configuration (e.g. `window_secs`, `allowed_origins[2]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub field: String,
    pub reason: String,
}

impl PolicyError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is invalid: {}", self.field, self.reason)
    }
}

impl std::error::Error for PolicyError {}
