//! Where the secrets key comes from (README, "Secrets at rest"): `BYDATA_SECRETS_KEY`, else the file
//! `[registry] secrets_key_file`, else `$XDG_CONFIG_HOME/bydata/secrets.key` (`~/.config/…`). A key file
//! that does not exist yet is created (random, mode 0600) while the registry holds no sealed secret; once
//! it does, only its key opens it, and bydata refuses to start without it. Never inside the data dir: a
//! copy of the data dir must not carry its key.
use anyhow::Context;
use bydata_store::{RedbRegistry, SecretKey};
use std::path::{Path, PathBuf};

/// The environment variable holding the key itself (64 hex digits or base64 of 32 bytes).
const ENV: &str = "BYDATA_SECRETS_KEY";

/// The key the registry in `data_dir` is (or will be) sealed under.
pub(crate) fn key(configured: Option<&Path>, data_dir: &Path) -> anyhow::Result<SecretKey> {
    if let Some(text) = std::env::var_os(ENV) {
        let text = text
            .into_string()
            .map_err(|_| anyhow::anyhow!("{ENV} is not valid UTF-8"))?;
        tracing::info!("secrets key taken from {ENV}");
        return Ok(SecretKey::parse(&text, ENV)?);
    }
    let path = match configured {
        Some(path) => path.to_owned(),
        None => default_path().context(
            "no secrets key: set BYDATA_SECRETS_KEY or [registry] secrets_key_file (neither \
             XDG_CONFIG_HOME nor HOME is set, so there is no default key file)",
        )?,
    };
    refuse_inside(&path, data_dir)?;
    if path.exists() {
        tracing::info!(path = %path.display(), "secrets key read from its file");
        return Ok(SecretKey::read_file(&path)?);
    }
    let registry = data_dir.join("registry.redb");
    if RedbRegistry::holds_sealed_secrets(&registry)
        .context("cannot look into the registry for sealed secrets")?
    {
        anyhow::bail!(
            "no secrets key: {} holds LoRaWAN keys sealed under a key, and the key file {} does not \
             exist; start bydata with the key this data dir was written with (BYDATA_SECRETS_KEY or \
             [registry] secrets_key_file)",
            registry.display(),
            path.display()
        );
    }
    let key = SecretKey::create_file(&path)?;
    println!(
        "Secrets key (LoRaWAN keys and network-server passwords are sealed under it) created at {}: \
         back it up apart from the data dir; the data dir cannot be read without it",
        path.display()
    );
    Ok(key)
}

/// `$XDG_CONFIG_HOME/bydata/secrets.key`, or `$HOME/.config/bydata/secrets.key`.
fn default_path() -> Option<PathBuf> {
    let non_empty = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    let config = non_empty("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(config.join("bydata").join("secrets.key"))
}

/// Refuses a key file inside the data dir (compared after resolving links and `..`).
fn refuse_inside(path: &Path, data_dir: &Path) -> anyhow::Result<()> {
    let resolved = |p: &Path| {
        let mut missing = Vec::new();
        let mut at = std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
        // The file (and its directory) may not exist yet: resolve what does.
        loop {
            if let Ok(real) = at.canonicalize() {
                return missing.into_iter().rev().fold(real, |acc, c| acc.join(c));
            }
            match (at.file_name().map(ToOwned::to_owned), at.parent()) {
                (Some(name), Some(parent)) => {
                    missing.push(name);
                    at = parent.to_owned();
                }
                _ => return at,
            }
        }
    };
    let (key, dir) = (resolved(path), resolved(data_dir));
    anyhow::ensure!(
        !key.starts_with(&dir),
        "the secrets key file {} is inside the data dir {}: a copy of the data dir would carry the key \
         that opens it; keep it elsewhere (e.g. /etc/bydata/secrets.key)",
        path.display(),
        data_dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_inside_the_data_dir_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("mkdir");
        for inside in [
            data.join("secrets.key"),
            data.join("sub/secrets.key"),
            dir.path().join("data/../data/x.key"),
        ] {
            let err = refuse_inside(&inside, &data).expect_err("inside");
            assert!(err.to_string().contains("inside the data dir"), "{err}");
        }
        for outside in [
            dir.path().join("secrets.key"),
            dir.path().join("data.key"),
            dir.path().join("data2/secrets.key"),
        ] {
            refuse_inside(&outside, &data).expect("outside");
        }
    }
}
