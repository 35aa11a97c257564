//! OpenID Connect login, the relying party's side (authorization code flow with PKCE), written for bydata
//! rather than taken from a general crate, so the build stays small and every refusal is worded here.
//!
//! `config` reads `[oidc]`; `client` talks to the provider (discovery, the authorization URL, the code
//! exchange, keys); `jws` and `claims` are pure checks of what comes back — the ID token's signature against
//! the provider's keys (RS256, ES256) and its issuer, audience, times and nonce.
mod claims;
mod client;
mod config;
mod error;
mod jws;

pub use claims::Identity;
pub(crate) use client::{Client, random};
pub use config::{ClientAuth, OidcConfig, RoleMapping, Secret};
pub use error::{Error as OidcError, Refusal};
