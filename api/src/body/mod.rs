//! JSON request bodies, checked in one place: [`Body<T>`] reads the body whatever its `Content-Type` (curl's
//! `-d` sends `application/x-www-form-urlencoded`), checks it against the schema the OpenAPI document gives
//! `T` — so the document and the checks cannot drift — and answers every problem of the body at once
//! (`invalid_body` with `problems`, field by field). What passes the schema but not `T`'s own rules (a
//! newtype's invariant) answers in the same shape, with the field's path.
mod schema;
mod words;

use crate::Error;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::LazyLock;

/// One problem of a body: where (`title.en`, `examples[0].fport`; empty for the body itself) and what.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

/// A JSON body of type `T`, every problem of it named in one `400 invalid_body`.
#[derive(Debug)]
pub(crate) struct Body<T>(pub(crate) T);

/// Like [`Body`], for operations whose body may be left out (an empty body gives `None`).
#[derive(Debug)]
pub(crate) struct OptionalBody<T>(pub(crate) Option<T>);

impl<T, S> FromRequest<S> for Body<T>
where
    T: DeserializeOwned + utoipa::ToSchema,
    S: Send + Sync,
{
    type Rejection = Error;
    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let bytes = read(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(one(
                "",
                format!(
                    "the body is empty: send a JSON object {}",
                    field_list(&T::name())
                ),
            ));
        }
        parse(&bytes).map(Body)
    }
}

impl<T, S> FromRequest<S> for OptionalBody<T>
where
    T: DeserializeOwned + utoipa::ToSchema,
    S: Send + Sync,
{
    type Rejection = Error;
    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let bytes = read(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalBody(None));
        }
        parse(&bytes).map(|t| OptionalBody(Some(t)))
    }
}

async fn read<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, Error> {
    Bytes::from_request(req, state).await.map_err(|r| {
        if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            Error::bad(
                "body_too_large",
                "the body is larger than this endpoint accepts (2 MiB; a codec upload 4 MiB)",
            )
        } else {
            one("", "the body could not be read to its end; send it again")
        }
    })
}

fn one(field: &str, message: impl Into<String>) -> Error {
    Error::InvalidBody {
        problems: vec![Problem {
            field: field.to_owned(),
            message: message.into(),
        }],
    }
}

/// The document's component schemas, parsed once.
static SCHEMAS: LazyLock<serde_json::Map<String, Value>> = LazyLock::new(|| {
    serde_json::from_str::<Value>(&crate::openapi::DOCUMENT)
        .ok()
        .and_then(|d| d["components"]["schemas"].as_object().cloned())
        .unwrap_or_default()
});

/// `T`'s top-level fields, to say what an empty body should hold.
/// `with name, role (optional: org, expires_at)`: the required fields first, then the others.
fn field_list(name: &str) -> String {
    let Some(schema) = SCHEMAS.get(name) else {
        return "see /api".to_owned();
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match schema["properties"].as_object() {
        Some(p) if !p.is_empty() => {
            let optional: Vec<&str> = p
                .keys()
                .map(String::as_str)
                .filter(|k| !required.contains(k))
                .collect();
            match (required.is_empty(), optional.is_empty()) {
                (false, false) => format!(
                    "with {} (optional: {})",
                    required.join(", "),
                    optional.join(", ")
                ),
                (false, true) => format!("with {}", required.join(", ")),
                (true, _) => format!("with any of {}", optional.join(", ")),
            }
        }
        _ => "see /api".to_owned(),
    }
}

fn parse<T: DeserializeOwned + utoipa::ToSchema>(bytes: &[u8]) -> Result<T, Error> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        one(
            "",
            format!(
                "the body is not JSON ({} at line {}, column {}); send a JSON object",
                category(&e),
                e.line(),
                e.column()
            ),
        )
    })?;
    let problems = problems_of::<T>(&value);
    if !problems.is_empty() {
        return Err(Error::InvalidBody { problems });
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { String::new() } else { field };
        let (field, message) = serde_words(field, &e.into_inner().to_string());
        one(&field, message)
    })
}

/// Every problem the schema of `T` finds in `value`.
pub(crate) fn problems_of<T: utoipa::ToSchema>(value: &Value) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(s) = SCHEMAS.get(T::name().as_ref()) {
        schema::check(value, s, &SCHEMAS, &schema::Path::default(), &mut problems);
    }
    problems
}

fn category(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "it ends too early",
        serde_json::error::Category::Syntax => "a syntax error",
        _ => "an unreadable value",
    }
}

/// serde's words made ours, for what only the Rust types check (a newtype's own rules): its messages from
/// our newtypes already speak the user's words; the few of serde's own are reworded.
fn serde_words(field: String, message: &str) -> (String, String) {
    let message = message
        .rsplit_once(" at line ")
        .map_or(message, |(m, _)| m)
        .to_owned();
    let tick = |m: &str| m.split('`').nth(1).map(str::to_owned);
    if let Some(rest) = message.strip_prefix("missing field ") {
        let key = tick(rest).unwrap_or_default();
        let field = if field.is_empty() {
            key
        } else {
            format!("{field}.{key}")
        };
        return (field, "required".to_owned());
    }
    if message.starts_with("unknown field ") {
        let key = tick(&message).unwrap_or_default();
        let field = if field.is_empty() {
            key
        } else {
            format!("{field}.{key}")
        };
        return (field, "unknown field".to_owned());
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((got, want)) = rest.split_once(", expected ")
        {
            return (field, format!("expected {want}, found {got}"));
        }
    }
    (field, message)
}

#[cfg(test)]
mod tests;
