//! Defaulting and validation of objects, as Kubernetes' registry strategies do
//! them: defaults first, then validation, whose messages name the field
//! (`spec.containers[0].image: Required value`).

pub mod names;

use std::fmt;

use serde_json::Value;

/// What is wrong with a field, as Kubernetes' `field.ErrorType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// "Required value".
    Required,
    /// "Invalid value".
    Invalid,
    /// "Unsupported value".
    NotSupported,
    /// "Forbidden".
    Forbidden,
    /// "Duplicate value".
    Duplicate,
    /// "Too long".
    TooLong,
}

impl FieldErrorKind {
    /// The text Kubernetes prints for this kind of error.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Invalid => "Invalid value",
            FieldErrorKind::NotSupported => "Unsupported value",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::Duplicate => "Duplicate value",
            FieldErrorKind::TooLong => "Too long",
        }
    }

    /// The `causes[].reason` Kubernetes puts in a Status (`FieldValueRequired`, …).
    pub fn cause_reason(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::TooLong => "FieldValueTooLong",
        }
    }
}

/// One invalid field.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// The field's path, such as `spec.containers[0].image`.
    pub field: String,
    /// What is wrong.
    pub kind: FieldErrorKind,
    /// The detail after the kind, such as `"Web": a lowercase RFC 1123 label must …`;
    /// empty when the kind says it all.
    pub detail: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.kind.as_str())?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// Fills in the defaults of an object of `kind` (such as "Pod"), as the API
/// server does before validation.
pub fn default(kind: &str, object: &mut Value) {
    let _ = (kind, object);
}

/// Validates an object of `kind` being created (`old` = None) or replacing
/// `old`; empty when it is valid.
pub fn validate(kind: &str, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let _ = (kind, object, old);
    Vec::new()
}
