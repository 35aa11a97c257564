//! TLS for the MQTT and HTTP edges: the certificate chain and key from PEM files named in the config
//! (`[tls]`), served by rustls (ring), and picked up again when the files are renewed (their mtimes are
//! checked every few seconds; a pair that does not load is logged and the old one kept).
//!
//! The handshake itself runs in each edge's per-connection task, after the connection caps and inside the
//! deadline the edge already gives a new connection (the CONNECT read, the header timeout).
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio_rustls::rustls;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
pub use tokio_rustls::TlsAcceptor;

/// How often the PEM files' mtimes are checked for a renewal.
const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// The PEM files: the chain (leaf first) and its private key (PKCS#8, PKCS#1 or SEC1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
}

/// Why the PEM files cannot be served, in words naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

fn named(path: &Path, what: impl std::fmt::Display) -> TlsError {
    TlsError(format!("{}: {what}", path.display()))
}

/// Reads and checks the pair: the chain is not empty, the key parses and matches the leaf.
fn load(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let certs = CertificateDer::pem_file_iter(&files.cert_pem)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            named(
                &files.cert_pem,
                format!("cannot read a certificate chain: {e}"),
            )
        })?;
    if certs.is_empty() {
        return Err(named(&files.cert_pem, "no CERTIFICATE block in it"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key_pem)
        .map_err(|e| named(&files.key_pem, format!("cannot read a private key: {e}")))?;
    let key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| named(&files.key_pem, format!("unusable private key: {e}")))?;
    let certified = CertifiedKey::new(certs, key);
    certified.keys_match().map_err(|e| {
        named(
            &files.key_pem,
            format!(
                "does not match the certificate in {}: {e}",
                files.cert_pem.display()
            ),
        )
    })?;
    Ok(certified)
}

fn modified(files: &TlsFiles) -> Option<SystemTime> {
    let stamp = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Some(stamp(&files.cert_pem)?.max(stamp(&files.key_pem)?))
}

type Current = (Option<SystemTime>, Arc<CertifiedKey>);

/// The certificate being served; swapped when the files change.
#[derive(Debug)]
struct CertStore {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Current>,
}

impl CertStore {
    fn current(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn reload_if_changed(&self) {
        let stamp = modified(&self.files);
        if stamp.is_none() || stamp == self.current().0 {
            return;
        }
        match load(&self.files, &self.provider) {
            Ok(key) => {
                *self
                    .current
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = (stamp, Arc::new(key));
                tracing::info!(cert = %self.files.cert_pem.display(), "TLS certificate reloaded");
            }
            // e.g. the certificate written but not yet the key: tried again on the next check
            Err(e) => {
                tracing::warn!(error = %e, "TLS certificate not reloaded; serving the previous one")
            }
        }
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current().1.clone())
    }
}

/// TLS for one or more listeners from the same files; [`Tls::acceptor`] gives each its own ALPN.
#[derive(Debug, Clone)]
pub struct Tls {
    store: Arc<CertStore>,
}

impl Tls {
    /// Loads the files (a bad pair is an error at start) and, on a tokio runtime, watches them for renewals.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let provider = ring();
        let stamp = modified(&files);
        let key = load(&files, &provider)?;
        let store = Arc::new(CertStore {
            files,
            provider,
            current: RwLock::new((stamp, Arc::new(key))),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&store);
            runtime.spawn(async move {
                loop {
                    tokio::time::sleep(RELOAD_EVERY).await;
                    let Some(store) = weak.upgrade() else { return };
                    let _ = tokio::task::spawn_blocking(move || store.reload_if_changed()).await;
                }
            });
        }
        Ok(Self { store })
    }

    /// An acceptor offering `alpn` (e.g. `http/1.1` for HTTPS; none for MQTT).
    pub fn acceptor(&self, alpn: &[&[u8]]) -> Result<TlsAcceptor, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.store.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(format!("TLS: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(self.store.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// rustls with ring, named explicitly (not "whichever provider the build graph enabled"). Newer rustls
/// deprecates `default_provider` (no post-quantum key exchange); `allow`, as the locked version does not.
#[allow(deprecated)]
fn ring() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
