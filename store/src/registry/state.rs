//! A device's text state: the latest text each of its fields sent (a firmware version, a door's "open", a
//! sensor's "No Sensor"), with its time. Kept in the device's status record, so it is committed with the
//! journal position that produced it, survives restarts and goes with the device when it is deleted.
//!
//! Bounded: at most [`MAX_STATE_FIELDS`] fields per device; when a new field would exceed that, the fields
//! updated longest ago give way (a device whose field names change does not fill up for good). The length of
//! each text is bounded where it is decoded (`ingest`'s `MAX_TEXT_BYTES`, 256 bytes).
use bydata_schemas::UnixNanos;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most text fields kept per device.
pub const MAX_STATE_FIELDS: usize = 64;

/// The latest text of one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextState {
    pub value: String,
    pub time: UnixNanos,
}

/// Sets `field` to `value` unless it holds a newer one (at the same time the later call wins, as the last
/// message does), then drops the oldest fields beyond [`MAX_STATE_FIELDS`].
pub(crate) fn keep(
    state: &mut BTreeMap<String, TextState>,
    field: &str,
    value: &str,
    time: UnixNanos,
) {
    match state.get_mut(field) {
        Some(current) if current.time > time => return,
        Some(current) => {
            value.clone_into(&mut current.value);
            current.time = time;
        }
        None => {
            state.insert(
                field.to_owned(),
                TextState {
                    value: value.to_owned(),
                    time,
                },
            );
        }
    }
    while state.len() > MAX_STATE_FIELDS {
        let Some(oldest) = state
            .iter()
            .filter(|(name, _)| name.as_str() != field)
            .min_by_key(|(name, s)| (s.time, name.as_str()))
            .map(|(name, _)| name.clone())
        else {
            break;
        };
        state.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_wins_and_the_oldest_give_way() {
        let mut state = BTreeMap::new();
        keep(&mut state, "firmware", "1.2.3", 10);
        keep(&mut state, "firmware", "1.2.2", 5);
        keep(&mut state, "firmware", "1.2.4", 10);
        assert_eq!(
            state.get("firmware"),
            Some(&TextState {
                value: "1.2.4".into(),
                time: 10
            })
        );
        for i in 0..MAX_STATE_FIELDS {
            keep(&mut state, &format!("f{i:02}"), "x", 100 + i as i64);
        }
        assert_eq!(state.len(), MAX_STATE_FIELDS);
        assert!(!state.contains_key("firmware"), "the oldest gave way");
        // A new field sent at an old time still gets in; an older one goes.
        keep(&mut state, "late", "y", 1);
        assert!(state.contains_key("late") && !state.contains_key("f00"));
    }
}
