//! The one place where failures become HTTP responses.
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "missing or malformed Authorization header: send `Authorization: Bearer <key>`, or log in"
    )]
    Unauthenticated,
    /// Credentials that were sent but do not authenticate: the reason (unknown, revoked, expired).
    #[error("{reason}")]
    BadCredentials { reason: String },
    #[error("you may not do this: it needs {needs}")]
    Forbidden { needs: String },
    /// A device's credentials (HTTP Basic, a device key) missing, unreadable or not valid: the reason, never
    /// which of id and password was wrong (`WWW-Authenticate: Basic`).
    #[error("{reason}")]
    DeviceCredentials { reason: String },
    /// A body larger than the route takes (`413 too_large`).
    #[error("{message}")]
    TooLarge { message: String },
    /// A body of a type the route does not take (`415 unsupported_media_type`).
    #[error("{message}")]
    UnsupportedMediaType { message: String },
    /// A session cookie that names no live session: the reason (expired, idle, unknown, malformed).
    #[error("{message}")]
    Session { message: String },
    /// A request with a session cookie that may change something, without the session's CSRF token.
    #[error("send X-CSRF-Token: the session's CSRF token (GET /auth/me) to change anything")]
    Csrf,
    /// A logged-in person whose identity provider groups give no role anywhere.
    #[error("your identity provider groups map to no organisation (received: {}); ask an admin to map one in \
             [[oidc.roles]] or to add you as a member of an organisation",
            if groups.is_empty() { "none".to_owned() } else { groups.join(", ") })]
    NoRole { groups: Vec<String> },
    /// A login that did not complete: the provider refused, or its answer did not verify.
    #[error("{message}")]
    LoginRefused { message: String },
    #[error("{what} {id:?} not found")]
    NotFound { what: &'static str, id: String },
    #[error("{what} {id:?} already exists")]
    Conflict { what: &'static str, id: String },
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// A JSON body with problems, every one named (`400 invalid_body` with `problems`).
    #[error("{}", problems_message(problems))]
    InvalidBody { problems: Vec<crate::body::Problem> },
    /// No route has this path (`404 not_found`).
    #[error("there is no {path:?} here; the API's routes are listed at /api")]
    NoRoute { path: String },
    /// The path exists, but not with this method (`405 method_not_allowed`, with `Allow`).
    #[error("{method} is not allowed on {path:?}; it allows {}", allowed.join(", "))]
    MethodNotAllowed {
        method: String,
        path: String,
        allowed: Vec<String>,
    },
    /// The server cannot take this request now: too busy, or out of time. The message says what to do.
    #[error("{message}")]
    Unavailable {
        code: &'static str,
        message: String,
        /// Sent as `Retry-After` when waiting is the remedy.
        retry_after_secs: Option<u64>,
    },
    /// New data is refused for now: the disk is full (507) or bydata is shutting down (503).
    #[error("{reason}")]
    NotAccepting {
        reason: bydata_store::health::Refusal,
    },
    #[error(transparent)]
    Store(bydata_store::Error),
    #[error("{message}")]
    Internal { message: String },
    /// The request is well formed but the object's state refuses it now (`409`): a full downlink queue, a
    /// downlink no longer queued.
    #[error("{message}")]
    StateConflict { code: &'static str, message: String },
    /// The request is well formed but cannot be carried out as asked (`422`): JSON for a codec that cannot
    /// encode it. The message says what to add or send instead.
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
}

impl From<crate::HookError> for Error {
    fn from(e: crate::HookError) -> Self {
        let bad = |code| Error::BadRequest {
            code,
            message: e.to_string(),
        };
        match &e {
            crate::HookError::CodecRejected { .. } => bad("codec_rejected"),
            crate::HookError::InvalidExamples { problems } => Error::InvalidBody {
                problems: problems
                    .iter()
                    .map(|(field, message)| crate::body::Problem {
                        field: field.clone(),
                        message: message.clone(),
                    })
                    .collect(),
            },
            crate::HookError::RedecodeRunning { .. } => bad("redecode_running"),
            crate::HookError::RedecodeRefused { .. } => bad("invalid_redecode"),
            crate::HookError::Internal { message } => Error::Internal {
                message: message.clone(),
            },
        }
    }
}

/// Open data's failures keep the codes and statuses the API has always answered with.
impl From<bydata_opendata::Error> for Error {
    fn from(e: bydata_opendata::Error) -> Self {
        use bydata_opendata::Error as E;
        match e {
            E::InvalidDefinition { message } => Error::bad("invalid_dataset", message),
            E::InvalidName { message } => Error::bad("invalid_name", message),
            E::PrivacyRefused { reason } => Error::bad("privacy_refused", reason),
            E::InvalidPeriod { message } => Error::bad("invalid_period", message),
            E::DatasetNotFound { id } => Error::NotFound {
                what: "dataset",
                id: id.chars().take(64).collect(),
            },
            E::Store(e) => Error::from(e),
            other => Error::Internal {
                message: other.to_string(),
            },
        }
    }
}

/// A line-protocol body that cannot be read or parsed (`POST /api/v2/write`).
impl From<bydata_ingest::line_protocol::LineProtocolError> for Error {
    fn from(e: bydata_ingest::line_protocol::LineProtocolError) -> Self {
        Error::bad("invalid_line_protocol", e.message)
    }
}

impl From<bydata_ingest::line_protocol::BodyError> for Error {
    fn from(e: bydata_ingest::line_protocol::BodyError) -> Self {
        use bydata_ingest::line_protocol::BodyError as E;
        let code = match e {
            E::NotUtf8 { .. } | E::NotGzip { .. } => "invalid_body",
            E::TooLarge => "body_too_large",
        };
        Error::bad(code, e.to_string())
    }
}

impl From<bydata_ingest::series_quota::QuotaError> for Error {
    fn from(e: bydata_ingest::series_quota::QuotaError) -> Self {
        match e {
            bydata_ingest::series_quota::QuotaError::Limit(message) => {
                Error::bad("series_limit", message)
            }
            bydata_ingest::series_quota::QuotaError::Store(e) => e.into(),
        }
    }
}

/// Query parameters that are not a query (`GET /api/v1/query`, a building's KPIs).
impl From<bydata_store::query::ParamError> for Error {
    fn from(e: bydata_store::query::ParamError) -> Self {
        use bydata_store::query::ParamError as E;
        match e {
            E::Unknown(m) => Error::bad("unknown_parameter", m),
            E::Missing(m) => Error::bad("missing_parameter", m),
            E::Invalid(m) => Error::bad("invalid_parameter", m),
            E::Range(m) => Error::bad("invalid_range", m),
            E::Query(e) => Error::from(e),
        }
    }
}

impl From<bydata_store::Error> for Error {
    fn from(e: bydata_store::Error) -> Self {
        match e {
            bydata_store::Error::NotFound { what, id } => Error::NotFound { what, id },
            bydata_store::Error::Conflict { what, id } => Error::Conflict { what, id },
            bydata_store::Error::InvalidQuery { reason } => Error::BadRequest {
                code: "invalid_query",
                message: reason,
            },
            bydata_store::Error::QueryTooLarge { refusal } => Error::BadRequest {
                code: "query_too_large",
                message: refusal.to_string(),
            },
            bydata_store::Error::QueryBusy {
                message,
                retry_after_secs,
            } => Error::Unavailable {
                code: "busy",
                message,
                retry_after_secs: Some(retry_after_secs),
            },
            bydata_store::Error::QueryTimeout { message } => Error::Unavailable {
                code: "query_timeout",
                message,
                retry_after_secs: None,
            },
            e @ bydata_store::Error::QueueFull { .. } => Error::StateConflict {
                code: "downlink_queue_full",
                message: e.to_string(),
            },
            other => Error::Store(other),
        }
    }
}

/// A person-given name (device, gateway, building, integration, token): trimmed, 1 to 200 characters.
pub(crate) fn display_name(raw: &str) -> Result<&str, Error> {
    let name = raw.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(Error::bad(
            "invalid_name",
            "name must be 1 to 200 characters",
        ));
    }
    Ok(name)
}

/// The answer to a DELETE: 204 if the thing existed (logged with who removed it), else 404.
pub(crate) fn deleted(
    existed: bool,
    what: &'static str,
    id: impl std::fmt::Display,
    by: &crate::auth::Actor,
) -> Result<axum::http::StatusCode, Error> {
    if existed {
        tracing::info!(what, id = %id, by = %by, "deleted");
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(Error::NotFound {
            what,
            id: id.to_string().chars().take(64).collect(),
        })
    }
}

/// `2 problems: title: expected …; id: required`.
fn problems_message(problems: &[crate::body::Problem]) -> String {
    let each: Vec<String> = problems
        .iter()
        .map(|p| {
            if p.field.is_empty() {
                p.message.clone()
            } else {
                format!("{}: {}", p.field, p.message)
            }
        })
        .collect();
    let n = problems.len();
    format!(
        "{n} problem{}: {}",
        if n == 1 { "" } else { "s" },
        each.join("; ")
    )
}

impl Error {
    pub(crate) fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Error::BadRequest {
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Error::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Error::BadCredentials { .. } => (StatusCode::UNAUTHORIZED, "invalid_token"),
            Error::Session { .. } => (StatusCode::UNAUTHORIZED, "invalid_session"),
            Error::Csrf => (StatusCode::FORBIDDEN, "csrf"),
            Error::NoRole { .. } => (StatusCode::FORBIDDEN, "no_role"),
            Error::LoginRefused { .. } => (StatusCode::UNAUTHORIZED, "login_refused"),
            Error::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            Error::DeviceCredentials { .. } => {
                (StatusCode::UNAUTHORIZED, "invalid_device_credentials")
            }
            Error::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Error::UnsupportedMediaType { .. } => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Error::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            Error::Conflict { .. } => (StatusCode::CONFLICT, "conflict"),
            Error::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, *code),
            Error::InvalidBody { .. } => (StatusCode::BAD_REQUEST, "invalid_body"),
            Error::NoRoute { .. } => (StatusCode::NOT_FOUND, "not_found"),
            Error::MethodNotAllowed { .. } => {
                (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
            }
            Error::Unavailable {
                code: "too_many_failures",
                ..
            } => (StatusCode::TOO_MANY_REQUESTS, "too_many_failures"),
            Error::Unavailable { code, .. } => (StatusCode::SERVICE_UNAVAILABLE, *code),
            Error::NotAccepting {
                reason: bydata_store::health::Refusal::DiskFull { .. },
            } => (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage"),
            Error::NotAccepting { .. } => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            Error::Store(_) | Error::Internal { .. } => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
            Error::StateConflict { code, .. } => (StatusCode::CONFLICT, *code),
            Error::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, *code),
        };
        let retry_after = match &self {
            Error::Unavailable {
                retry_after_secs, ..
            } => *retry_after_secs,
            _ => None,
        };
        let message = if matches!(self, Error::Store(_) | Error::Internal { .. }) {
            // The full error goes to the log once; the client gets nothing it could misuse.
            tracing::error!(error = %self, "request failed");
            "internal error; the server log has the details".to_owned()
        } else {
            self.to_string()
        };
        let mut detail = json!({"code": code, "message": message});
        if let Error::InvalidBody { problems } = &self {
            detail["problems"] = json!(problems);
        }
        let mut response = (status, Json(json!({ "error": detail }))).into_response();
        if let Error::MethodNotAllowed { allowed, .. } = &self
            && let Ok(allow) = axum::http::HeaderValue::from_str(&allowed.join(", "))
        {
            response
                .headers_mut()
                .insert(axum::http::header::ALLOW, allow);
        }
        if let Some(secs) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            // A device is asked for what it logs in with; everyone else for an API key.
            let scheme = if matches!(self, Error::DeviceCredentials { .. }) {
                "Basic realm=\"bydata devices\", Bearer"
            } else {
                "Bearer"
            };
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(scheme),
            );
        }
        response
    }
}
