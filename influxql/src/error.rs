//! Why a query is refused, in the words the client shows.
/// Why a query is not one bydata can answer. `Display` is the message for the client.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("found {found}, expected {expected} at char {at}")]
    Syntax {
        found: String,
        expected: String,
        at: usize,
    },
    #[error("{what} is not supported: {hint}")]
    Unsupported { what: String, hint: String },
    #[error("the query nests or chains too deeply (more than {limit} levels or operators)")]
    TooDeep { limit: usize },
    #[error("the query is empty: send a statement in q, e.g. q=SHOW MEASUREMENTS")]
    Empty,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
