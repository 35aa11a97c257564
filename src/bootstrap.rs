//! The bootstrap admin token: taken from `BYDATA_ADMIN_TOKEN`, or generated and printed once at the first
//! start; and what `serve` says about it at every start, so a restart tells how to get one back.
use bydata_schemas::UnixNanos;
use bydata_store::{NewToken, RegistryPort, Role};

/// Where this start's admin token came from: what `serve` says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AdminToken {
    /// `BYDATA_ADMIN_TOKEN` (it replaces the one an earlier start took from there).
    FromEnv,
    /// Generated and printed now, at the first start.
    Generated,
    /// Made at an earlier start; only its hash is kept.
    Earlier,
}

impl AdminToken {
    pub(crate) fn says(self) -> &'static str {
        match self {
            Self::FromEnv => "the token in BYDATA_ADMIN_TOKEN (Authorization: Bearer …)",
            Self::Generated => {
                "the token printed above, shown only this once (Authorization: Bearer …)"
            }
            Self::Earlier => {
                "printed at the first start (bydata keeps only its hash); lost it? start with \
                 BYDATA_ADMIN_TOKEN=<16+ characters> bydata serve … to set one"
            }
        }
    }
}

/// Sets or creates the bootstrap admin token. Returns a token the demo simulator may use, if one is at hand,
/// and where the admin token came from.
pub(crate) async fn admin_token(
    registry: &dyn RegistryPort,
    now: UnixNanos,
) -> anyhow::Result<(Option<String>, AdminToken)> {
    if let Ok(token) = std::env::var("BYDATA_ADMIN_TOKEN") {
        if token.len() < 16 {
            anyhow::bail!("BYDATA_ADMIN_TOKEN must be at least 16 characters");
        }
        registry.set_bootstrap_token(&token, now).await?;
        tracing::info!("admin token taken from BYDATA_ADMIN_TOKEN");
        return Ok((Some(token), AdminToken::FromEnv));
    }
    if registry.has_admin_token().await? {
        return Ok((None, AdminToken::Earlier));
    }
    let (_, token) = registry
        .create_token(NewToken::new("bootstrap admin", None, Role::Admin), now)
        .await?;
    println!("Admin token (shown only once; bydata keeps only its hash):");
    println!("  {token}");
    Ok((Some(token), AdminToken::Generated))
}
