//! What a push reports: the package's outcome and the resources touched, or why it failed.
use serde::Serialize;

/// What happened to the package itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageOutcome {
    Created,
    Updated,
    Unchanged,
}

/// The result of one push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushReport {
    pub package: PackageOutcome,
    /// CKAN's id (a UUID) of the package.
    pub package_id: String,
    pub resources_created: usize,
    pub resources_updated: usize,
    pub resources_unchanged: usize,
    pub resources_deleted: usize,
    /// HTTP requests sent, retries included.
    pub attempts: u32,
}

/// Why a push failed. Messages name the action, the HTTP status and CKAN's own error; never the token.
#[derive(Debug, thiserror::Error)]
pub enum CkanError {
    #[error("CKAN target is not usable: {reason}")]
    Config { reason: String },
    #[error("dataset {dataset} cannot be pushed to CKAN: {reason}")]
    Dataset { dataset: String, reason: String },
    #[error(
        "{action} refused ({status} Authorization Error): {message}; check the API token and that its user \
         may edit datasets of organisation {owner_org}"
    )]
    Authorization {
        action: &'static str,
        status: u16,
        message: String,
        owner_org: String,
    },
    #[error("{action} refused ({status} {kind}): {detail}")]
    Refused {
        action: &'static str,
        status: u16,
        kind: String,
        detail: String,
    },
    #[error("{action}: not found ({detail})")]
    NotFound {
        action: &'static str,
        detail: String,
    },
    #[error("{action} failed after {attempts} attempts: {last}")]
    GaveUp {
        action: &'static str,
        attempts: u32,
        last: String,
    },
    #[error("{action}: unexpected response (HTTP {status}): {detail}")]
    Protocol {
        action: &'static str,
        status: u16,
        detail: String,
    },
    #[error("CKAN package {name} belongs to bydata dataset {other}, not {dataset}")]
    NameTaken {
        name: String,
        dataset: String,
        other: String,
    },
}
