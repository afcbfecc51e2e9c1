//! What an observation yields: a value read from the host, or why it could not be read.

/// A value read from the host, or why it could not be.
pub type Observed<T> = Result<T, ObsError>;

/// Why an observation failed, typed so controls can tell "absent" (evidence of a
/// problem) from "could not look" (`unknown`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ObsError {
    /// Absent, unreadable, or read but invalid.
    pub kind: ObsErrorKind,
    /// What happened, for humans (usually names the path).
    pub message: String,
}

/// The kind of an [`ObsError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObsErrorKind {
    /// The file does not exist.
    NotFound,
    /// It exists but could not be read (permission, size cap, loop, I/O).
    Unreadable,
    /// It was read but its content is not what it should be (not PEM, not a CA, bad YAML).
    Invalid,
}

impl ObsError {
    /// An error of `kind` with its message.
    pub fn new(kind: ObsErrorKind, message: impl Into<String>) -> Self {
        ObsError {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ObsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<crate::model::file::HostError> for ObsError {
    fn from(e: crate::model::file::HostError) -> Self {
        let kind = match e {
            crate::model::file::HostError::NotFound { .. } => ObsErrorKind::NotFound,
            crate::model::file::HostError::NotUtf8 { .. } => ObsErrorKind::Invalid,
            _ => ObsErrorKind::Unreadable,
        };
        ObsError::new(kind, e.to_string())
    }
}
