//! Uploaded JavaScript codecs: every upload under a name is a new, immutable version (1, 2, …), so a value
//! can always be traced to the exact script that produced it and an older version can be re-run — except an
//! upload identical to the newest version (same script byte for byte, same description and examples), which
//! is that version: re-running an upload script does not move the devices that follow the newest version.
use super::Registry;
use crate::Result;
use crate::error::{corrupt, db};
use bydata_schemas::{CodecName, OrgId, UnixNanos};
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// (name, version) → `StoredCodec` as JSON.
pub(super) const CODECS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("codecs");

/// One version of an uploaded codec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCodec {
    pub name: CodecName,
    pub version: u32,
    pub description: String,
    pub script: String,
    /// SHA-256 of the script, hex: identifies the code independently of its name.
    pub sha256: String,
    /// The example vectors it passed when it was uploaded (`[{fport, bytes_hex, expected}]`).
    pub examples: serde_json::Value,
    pub created_at: UnixNanos,
    /// The organisation whose codec it is (every version of a name belongs to the organisation of its first).
    #[serde(default)]
    pub org: OrgId,
}

/// A codec version as listed (without its script).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CodecSummary {
    pub name: CodecName,
    pub version: u32,
    pub description: String,
    pub sha256: String,
    pub examples: usize,
    pub script_bytes: usize,
    pub created_at: UnixNanos,
    pub org: OrgId,
}

impl From<&StoredCodec> for CodecSummary {
    fn from(c: &StoredCodec) -> Self {
        Self {
            name: c.name.clone(),
            version: c.version,
            description: c.description.clone(),
            sha256: c.sha256.clone(),
            examples: c.examples.as_array().map_or(0, Vec::len),
            script_bytes: c.script.len(),
            created_at: c.created_at,
            org: c.org.clone(),
        }
    }
}

/// What an upload did: stored a new version, or found it identical to the newest one.
#[derive(Debug, Clone, PartialEq)]
pub struct CodecAdded {
    pub codec: StoredCodec,
    /// `false` when the upload was identical to the newest version, which is returned instead.
    pub created: bool,
}

impl Registry {
    /// Stores `script` as the next version of codec `name` (1 for a new name) and returns it, unless the
    /// newest version has the same script, description and examples: then that one is returned. The caller has
    /// checked the script against its examples.
    pub(crate) fn add_codec_version(
        &self,
        name: &CodecName,
        description: String,
        script: String,
        examples: serde_json::Value,
        org: OrgId,
        now: UnixNanos,
    ) -> Result<CodecAdded> {
        let txn = self.db.begin_write().map_err(db("storing a codec"))?;
        let stored = {
            let mut codecs = txn.open_table(CODECS).map_err(db("storing a codec"))?;
            let newest = codecs
                .range((name.as_str(), 0)..=(name.as_str(), u32::MAX))
                .map_err(db("storing a codec"))?
                .next_back()
                .transpose()
                .map_err(db("storing a codec"))?
                .map(|(k, v)| (k.value().1, v.value().to_vec()));
            let latest = newest.as_ref().map_or(0, |(v, _)| *v);
            if let Some((_, raw)) = newest {
                let newest: StoredCodec = serde_json::from_slice(&raw).map_err(corrupt("codec"))?;
                if newest.org != org {
                    return Err(crate::Error::Conflict {
                        what: "codec",
                        id: name.to_string(),
                    });
                }
                if newest.script == script
                    && newest.description == description
                    && newest.examples == examples
                {
                    return Ok(CodecAdded {
                        codec: newest,
                        created: false,
                    });
                }
            }
            let stored = StoredCodec {
                name: name.clone(),
                version: latest + 1,
                description,
                sha256: hex::encode(Sha256::digest(script.as_bytes())),
                script,
                examples,
                created_at: now,
                org,
            };
            let json = serde_json::to_vec(&stored).map_err(corrupt("codec"))?;
            codecs
                .insert((name.as_str(), stored.version), json.as_slice())
                .map_err(db("storing a codec"))?;
            stored
        };
        crate::audit::amend(|e| {
            e.after["version"] = serde_json::json!(stored.version);
            e.after["sha256"] = serde_json::json!(stored.sha256);
        });
        self.commit(txn, "storing a codec")?;
        Ok(CodecAdded {
            codec: stored,
            created: true,
        })
    }

    /// A codec version, or its newest version when `version` is `None`.
    pub(crate) fn codec(
        &self,
        name: &CodecName,
        version: Option<u32>,
    ) -> Result<Option<StoredCodec>> {
        let txn = self.db.begin_read().map_err(db("reading a codec"))?;
        let codecs = txn.open_table(CODECS).map_err(db("reading a codec"))?;
        let raw = match version {
            Some(v) => codecs
                .get((name.as_str(), v))
                .map_err(db("reading a codec"))?
                .map(|v| v.value().to_vec()),
            None => codecs
                .range((name.as_str(), 0)..=(name.as_str(), u32::MAX))
                .map_err(db("reading a codec"))?
                .next_back()
                .transpose()
                .map_err(db("reading a codec"))?
                .map(|(_, v)| v.value().to_vec()),
        };
        raw.map(|r| serde_json::from_slice(&r).map_err(corrupt("codec")))
            .transpose()
    }

    /// The newest version number of codec `name`, if it exists.
    pub(crate) fn codec_latest_version(&self, name: &CodecName) -> Result<Option<u32>> {
        let txn = self.db.begin_read().map_err(db("reading a codec"))?;
        let codecs = txn.open_table(CODECS).map_err(db("reading a codec"))?;
        Ok(codecs
            .range((name.as_str(), 0)..=(name.as_str(), u32::MAX))
            .map_err(db("reading a codec"))?
            .next_back()
            .transpose()
            .map_err(db("reading a codec"))?
            .map(|(k, _)| k.value().1))
    }

    /// Every version of every codec, by name then version.
    pub(crate) fn codecs(&self) -> Result<Vec<CodecSummary>> {
        let txn = self.db.begin_read().map_err(db("listing codecs"))?;
        let codecs = txn.open_table(CODECS).map_err(db("listing codecs"))?;
        let mut out = Vec::new();
        for row in codecs.iter().map_err(db("listing codecs"))? {
            let (_, v) = row.map_err(db("listing codecs"))?;
            let c: StoredCodec = serde_json::from_slice(v.value()).map_err(corrupt("codec"))?;
            out.push(CodecSummary::from(&c));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_count_up_per_name_and_survive_reopen() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("registry.redb");
        let a = CodecName::new("elsys").expect("name");
        let b = CodecName::new("elsys-ers").expect("name");
        {
            let reg = Registry::open(&path).expect("open");
            assert_eq!(reg.codec(&a, None).expect("read"), None);
            let v1 = reg
                .add_codec_version(
                    &a,
                    "one".into(),
                    "function decodeUplink(){}".into(),
                    serde_json::json!([]),
                    OrgId::default(),
                    1,
                )
                .expect("v1")
                .codec;
            assert_eq!(v1.version, 1);
            assert_eq!(v1.sha256.len(), 64);
            let other = reg
                .add_codec_version(
                    &b,
                    String::new(),
                    "x".into(),
                    serde_json::json!([]),
                    OrgId::default(),
                    2,
                )
                .expect("b1")
                .codec;
            assert_eq!(other.version, 1);
            let v2 = reg
                .add_codec_version(
                    &a,
                    "two".into(),
                    "y".into(),
                    serde_json::json!([{"fport": 1}]),
                    OrgId::default(),
                    3,
                )
                .expect("v2")
                .codec;
            assert_eq!(v2.version, 2);
            // The same upload again is version 2, not a new one; a changed example is a new version.
            let again = reg
                .add_codec_version(
                    &a,
                    "two".into(),
                    "y".into(),
                    serde_json::json!([{"fport": 1}]),
                    OrgId::default(),
                    4,
                )
                .expect("again");
            assert_eq!((again.codec.version, again.created), (2, false));
            assert_eq!(again.codec.created_at, 3);
            let changed = reg
                .add_codec_version(
                    &a,
                    "two".into(),
                    "y".into(),
                    serde_json::json!([{"fport": 2}]),
                    OrgId::default(),
                    5,
                )
                .expect("changed");
            assert_eq!((changed.codec.version, changed.created), (3, true));
        }
        let reg = Registry::open(&path).expect("reopen");
        assert_eq!(
            reg.codec(&a, None)
                .expect("read")
                .expect("some")
                .description,
            "two"
        );
        assert_eq!(
            reg.codec(&a, Some(1))
                .expect("read")
                .expect("some")
                .description,
            "one"
        );
        assert_eq!(reg.codec(&a, Some(4)).expect("read"), None);
        assert_eq!(reg.codec_latest_version(&b).expect("read"), Some(1));
        let all: Vec<(String, u32)> = reg
            .codecs()
            .expect("list")
            .into_iter()
            .map(|c| (c.name.to_string(), c.version))
            .collect();
        assert_eq!(
            all,
            [
                ("elsys".into(), 1),
                ("elsys".into(), 2),
                ("elsys".into(), 3),
                ("elsys-ers".into(), 1)
            ]
        );
    }
}
