//! The series the engine knows (id → key and unit), and the catalog file it is loaded from.
use super::files;
use crate::Result;
use crate::error::io;
use crate::series::SeriesInfo;
use bydata_schemas::{SeriesKey, Unit};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// A series definition (or a change of its unit), as the WAL and the catalog record it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Def {
    pub(super) id: u64,
    pub(super) key: SeriesKey,
    pub(super) unit: Option<Unit>,
}

/// The series the engine knows. Each key is held once (in `infos`); `by_hash` finds it by a keyed hash of
/// the key, so an index of a million series costs one copy of their keys, not two. The hash is keyed per
/// process (std's `RandomState`), so crafted series keys cannot pile into one slot.
#[derive(Debug, Default)]
pub(super) struct Index {
    hasher: std::collections::hash_map::RandomState,
    by_hash: HashMap<u64, Ids>,
    pub(super) infos: BTreeMap<u64, SeriesInfo>,
}

/// The ids under one hash: nearly always one.
#[derive(Debug, Clone)]
enum Ids {
    One(u64),
    Many(Vec<u64>),
}

impl Index {
    fn hash(&self, key: &SeriesKey) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, key)
    }

    /// The id of `key`, if the engine knows it.
    pub(super) fn id(&self, key: &SeriesKey) -> Option<u64> {
        let is = |id: &u64| self.infos.get(id).is_some_and(|i| i.key == *key);
        match self.by_hash.get(&self.hash(key))? {
            Ids::One(id) => is(id).then_some(*id),
            Ids::Many(ids) => ids.iter().copied().find(|id| is(id)),
        }
    }

    pub(super) fn apply(&mut self, def: &Def) {
        if self.id(&def.key).is_none() {
            let hash = self.hash(&def.key);
            match self.by_hash.get_mut(&hash) {
                None => {
                    self.by_hash.insert(hash, Ids::One(def.id));
                }
                Some(Ids::One(other)) => {
                    let other = *other;
                    self.by_hash.insert(hash, Ids::Many(vec![other, def.id]));
                }
                Some(Ids::Many(ids)) => ids.push(def.id),
            }
        }
        self.infos.insert(
            def.id,
            SeriesInfo {
                key: def.key.clone(),
                unit: def.unit.clone(),
            },
        );
    }
}

/// Reads the catalog: the last definition of each series wins; a torn tail is ignored (and cut).
pub(super) fn load_catalog(path: &Path, index: &mut Index) -> Result<()> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("reading the series catalog", path)(e)),
    };
    let (bodies, valid) = files::frames(&bytes);
    for body in bodies {
        let def: Def = serde_json::from_slice(body).map_err(crate::error::corrupt("series"))?;
        index.apply(&def);
    }
    if valid < bytes.len() {
        files::cut_at(path, valid)?;
    }
    Ok(())
}
