//! What can go wrong in a login, in words a person (or the operator reading the log) can act on. No variant
//! carries a token, a code or a cookie.

/// Why the provider's ID token or key set is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{what}")]
    Malformed { what: &'static str },
    #[error("the ID token is signed with {alg:?}; bydata accepts RS256 and ES256")]
    UnsupportedAlgorithm { alg: String },
    #[error("no key of the provider's key set matches the ID token's key id {kid:?}")]
    UnknownKey { kid: String },
    #[error("the ID token's signature does not verify")]
    BadSignature,
    #[error("the ID token was issued by {got:?}, not by the configured issuer")]
    WrongIssuer { got: String },
    #[error("the ID token is not meant for this client (its audience does not name client_id)")]
    WrongAudience,
    #[error("the ID token names several audiences but was not issued to this client (azp)")]
    WrongParty,
    #[error("the ID token expired; log in again")]
    Expired,
    #[error("the ID token is dated in the future; check the clocks of bydata and the provider")]
    IssuedInFuture,
    #[error("the ID token's nonce does not match this login; start the login again")]
    NonceMismatch,
    #[error("the ID token's claims cannot be read: {what}")]
    Claims { what: String },
}

/// A login's failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `[oidc]` is not usable (found at start).
    #[error("[oidc]: {reason}")]
    Config { reason: String },
    /// The provider could not be reached, or answered something that is not what OpenID Connect says.
    #[error("the identity provider at {url} cannot be used: {reason}")]
    Provider { url: String, reason: String },
    /// The token endpoint refused the code (a replayed or expired code, a wrong verifier or secret).
    #[error("the identity provider refused the login: {error}{}",
            description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    TokenRefused {
        error: String,
        description: Option<String>,
    },
    /// The ID token is not accepted.
    #[error("the identity provider's answer is not accepted: {0}")]
    IdToken(#[from] Refusal),
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;
