//! Token authentication: `Authorization: Bearer <token>` (or InfluxDB's `Token <token>`), looked up by hash.
use crate::{AppState, Error};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use bydata_store::{Role, TokenInfo};

/// Any valid token (read or admin).
#[derive(Debug)]
pub(crate) struct Reader(#[allow(dead_code)] pub(crate) TokenInfo);

/// An admin token.
#[derive(Debug)]
pub(crate) struct Admin(pub(crate) TokenInfo);

/// A token that may write series: admin or write.
#[derive(Debug)]
pub(crate) struct Writer(pub(crate) TokenInfo);

async fn token(parts: &Parts, state: &AppState) -> Result<TokenInfo, Error> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(Error::Unauthenticated)?;
    let secret = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("Token "))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(Error::Unauthenticated)?;
    state
        .registry
        .authenticate(secret)
        .await?
        .ok_or(Error::BadToken)
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = Error;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        token(parts, state).await.map(Reader)
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Error;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let info = token(parts, state).await?;
        if info.role == Role::Admin {
            Ok(Admin(info))
        } else {
            Err(Error::Forbidden {
                needs: "an admin token",
            })
        }
    }
}

impl FromRequestParts<AppState> for Writer {
    type Rejection = Error;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let info = token(parts, state).await?;
        match info.role {
            Role::Admin | Role::Write => Ok(Writer(info)),
            Role::Read => Err(Error::Forbidden {
                needs: "an admin or write token",
            }),
        }
    }
}
