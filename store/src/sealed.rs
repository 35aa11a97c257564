//! Secrets at rest: what bydata must read back in clear (LoRaWAN session and root keys, the password of a
//! network server's broker) is sealed with ChaCha20-Poly1305 under a [`SecretKey`] kept outside the data
//! directory, so a copy of the directory without the key reveals none of it.
//!
//! A sealed value is `version (1 byte) || nonce (12 bytes, random) || ciphertext || tag (16 bytes)`. The
//! associated data names the table and the row, so a sealed value copied into another row does not open.
//! Plaintext JSON starts with `{`, never with [`VERSION`], which is how rows written before sealing are told
//! apart.
use crate::{Error, Result};
use base64::Engine as _;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::io::Write as _;
use std::path::Path;

/// The first byte of every sealed value (and of no JSON text).
pub(crate) const VERSION: u8 = 1;
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// The 32-byte key secrets are sealed under. `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; KEY_LEN]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// A new random key from the operating system.
    pub fn generate() -> Result<Self> {
        let mut bytes = [0; KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| Error::Random)?;
        Ok(Self(bytes))
    }

    /// A key written as 64 hex digits or as the base64 of 32 bytes (surrounding whitespace ignored);
    /// `origin` names where the text came from, for the error.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let text = text.trim();
        let bytes = if text.len() == 2 * KEY_LEN {
            hex::decode(text).ok()
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .ok()
                .or_else(|| {
                    base64::engine::general_purpose::STANDARD_NO_PAD
                        .decode(text)
                        .ok()
                })
        };
        bytes
            .and_then(|b| <[u8; KEY_LEN]>::try_from(b.as_slice()).ok())
            .map(Self)
            .ok_or_else(|| Error::InvalidSecretsKey {
                origin: origin.to_owned(),
            })
    }

    /// Reads a key file (64 hex digits, as [`SecretKey::create_file`] writes).
    pub fn read_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            context: "reading the secrets key file",
            path: path.display().to_string(),
            source,
        })?;
        warn_if_others_can_read(path);
        Self::parse(&text, &path.display().to_string())
    }

    /// Creates a key file holding a new random key, readable by its owner only, and returns the key. If
    /// another process created the file meanwhile, its key is returned instead (the file is never replaced).
    pub fn create_file(path: &Path) -> Result<Self> {
        let io = |context: &'static str| {
            move |source| Error::Io {
                context,
                path: path.display().to_string(),
                source,
            }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(io("creating the secrets key's directory"))?;
        }
        let key = Self::generate()?;
        let tmp = path.with_extension(format!(
            "tmp{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let written = (|| {
            let mut file = private_file(&tmp)?;
            file.write_all(format!("{}\n", hex::encode(key.0)).as_bytes())?;
            file.sync_all()?;
            // A hard link, unlike a rename, fails if the name exists: the first writer wins, whole.
            std::fs::hard_link(&tmp, path)
        })();
        let _ = std::fs::remove_file(&tmp);
        match written {
            Ok(()) => Ok(key),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::read_file(path),
            Err(e) => Err(io("writing the secrets key file")(e)),
        }
    }
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn warn_if_others_can_read(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            "the secrets key file can be read by others than its owner: chmod 600 it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_others_can_read(_: &Path) {}

/// Seals `plaintext` under `key`, bound to `aad` (which must be given again to open it).
pub(crate) fn seal(key: &SecretKey, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| Error::Random)?;
    let mut in_out = plaintext.to_vec();
    cipher(key)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut in_out,
        )
        .map_err(|_| Error::Random)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&in_out);
    Ok(out)
}

/// Why a sealed value did not open: another key, another row, or damage — the cipher cannot tell which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unopened;

/// Opens what [`seal`] made with the same key and `aad`.
pub(crate) fn open(key: &SecretKey, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, Unopened> {
    let (&version, rest) = sealed.split_first().ok_or(Unopened)?;
    if version != VERSION || rest.len() < NONCE_LEN + TAG_LEN {
        return Err(Unopened);
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let nonce = <[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| Unopened)?;
    let mut in_out = ciphertext.to_vec();
    let plain = cipher(key)
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut in_out,
        )
        .map_err(|_| Unopened)?;
    Ok(plain.to_vec())
}

/// Whether `value` is sealed (as opposed to a row written before sealing).
pub(crate) fn is_sealed(value: &[u8]) -> bool {
    value.first() == Some(&VERSION)
}

fn cipher(key: &SecretKey) -> LessSafeKey {
    #[allow(clippy::expect_used)] // 32 bytes is ChaCha20-Poly1305's key length, by the type
    let unbound = UnboundKey::new(&CHACHA20_POLY1305, &key.0).expect("a 32-byte key");
    LessSafeKey::new(unbound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_parse_from_hex_and_base64_only() {
        let key = SecretKey::from_bytes([0xab; 32]);
        let hex = hex::encode([0xab; 32]);
        assert_eq!(SecretKey::parse(&hex, "t").expect("hex"), key);
        assert_eq!(
            SecretKey::parse(&format!(" {}\n", hex.to_uppercase()), "t").expect("HEX"),
            key
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode([0xab; 32]);
        assert_eq!(SecretKey::parse(&b64, "t").expect("base64"), key);
        for bad in [
            "",
            "abcd",
            &hex[..62],
            &format!("{hex}00"),
            "not a key at all",
        ] {
            let err = SecretKey::parse(bad, "BYDATA_SECRETS_KEY").expect_err(bad);
            assert!(err.to_string().contains("BYDATA_SECRETS_KEY"), "{err}");
        }
        assert_eq!(format!("{key:?}"), "SecretKey(<redacted>)");
    }

    #[test]
    fn a_key_file_is_private_and_never_replaced() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("conf/bydata/secrets.key");
        let key = SecretKey::create_file(&path).expect("create");
        assert_eq!(SecretKey::read_file(&path).expect("read"), key);
        assert_eq!(SecretKey::create_file(&path).expect("again"), key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            std::fs::read_dir(path.parent().expect("dir"))
                .expect("ls")
                .count(),
            1
        );
    }

    #[test]
    fn another_key_or_another_row_does_not_open() {
        let key = SecretKey::from_bytes([1; 32]);
        let sealed = seal(&key, b"nwk_s_key", b"lorawan_sessions/26011bda").expect("seal");
        assert!(is_sealed(&sealed));
        assert!(!is_sealed(b"{\"device\":1}"));
        assert_ne!(
            seal(&key, b"nwk_s_key", b"lorawan_sessions/26011bda").expect("seal"),
            sealed,
            "a fresh nonce each time"
        );
        assert_eq!(
            open(&key, &sealed, b"lorawan_sessions/26011bda").expect("open"),
            b"nwk_s_key"
        );
        assert_eq!(
            open(&key, &sealed, b"lorawan_sessions/26011bdb"),
            Err(Unopened)
        );
        let other = SecretKey::from_bytes([2; 32]);
        assert_eq!(
            open(&other, &sealed, b"lorawan_sessions/26011bda"),
            Err(Unopened)
        );
        assert_eq!(open(&key, &[], b""), Err(Unopened));
    }

    proptest! {
        #[test]
        fn sealed_values_round_trip_and_any_bit_flip_is_refused(
            plain in proptest::collection::vec(any::<u8>(), 0..300),
            aad in proptest::collection::vec(any::<u8>(), 0..40),
            flip in any::<proptest::sample::Index>(),
            bit in 0u8..8,
        ) {
            let key = SecretKey::from_bytes([9; 32]);
            let mut sealed = seal(&key, &plain, &aad).expect("seal");
            prop_assert_eq!(open(&key, &sealed, &aad), Ok(plain));
            let i = flip.index(sealed.len());
            sealed[i] ^= 1 << bit;
            prop_assert_eq!(open(&key, &sealed, &aad), Err(Unopened));
        }

        #[test]
        fn arbitrary_bytes_never_open_nor_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let key = SecretKey::from_bytes([9; 32]);
            prop_assert_eq!(open(&key, &bytes, b""), Err(Unopened));
        }
    }
}
