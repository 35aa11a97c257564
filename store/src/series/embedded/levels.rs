//! The rollup levels: a bucket width per level (UTC hours and days), which rollups, reads and tombstones all
//! reckon in.

pub(super) const HOUR: i64 = 3_600_000_000_000;
pub(super) const DAY: i64 = 24 * HOUR;
/// (level id, bucket width), finest first.
pub(super) const LEVELS: [(u8, i64); 2] = [(0, HOUR), (1, DAY)];

/// Levels whose buckets tile `bounds` (every bound on a bucket edge), coarsest first.
pub(super) fn levels_for(bounds: &[i64]) -> Vec<(u8, i64)> {
    LEVELS
        .iter()
        .rev()
        .filter(|(_, w)| bounds.iter().all(|b| b.rem_euclid(*w) == 0))
        .copied()
        .collect()
}
