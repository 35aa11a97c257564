//! Rollup blocks: one series' [`Summary`] per bucket (an hour or a day), in columns compressed with the
//! same encoders as points, so a regular sensor's hourly rollup costs a few bytes per hour.
//!
//! ```text
//! version u8 (= 1), count varint
//! bucket starts           (`times`: a regular run of buckets costs a bit each)
//! counts, first and last point's offset in its bucket   (`ints`, each)
//! first, last, min, max, sum, increase values           (`values`, each: decimal or XOR)
//! crc32 u32 of everything before it
//! ```
use super::bits::{BitReader, BitWriter};
use super::ints::{self, Unpacker};
use super::{BlockError, Summary, check, times, values};

const VERSION: u8 = 1;

/// Encodes `(bucket start, summary)` pairs with increasing starts; every summary lies at or after its start.
pub(crate) fn encode(entries: &[(i64, Summary)]) -> Result<Vec<u8>, BlockError> {
    if entries.is_empty() {
        return Err(BlockError::Empty);
    }
    if entries.len() > super::MAX_POINTS {
        return Err(BlockError::TooMany {
            count: entries.len(),
        });
    }
    for (index, (start, s)) in entries.iter().enumerate() {
        let floats = [s.first.1, s.last.1, s.min, s.max, s.sum, s.increase];
        if !floats.iter().all(|v| v.is_finite()) {
            return Err(BlockError::NonFinite { index });
        }
        if s.first.0 < *start || index > 0 && entries[index - 1].0 >= *start {
            return Err(BlockError::NotIncreasing { index });
        }
        check(s)?;
    }
    let starts: Vec<i64> = entries.iter().map(|e| e.0).collect();
    let mut out = BitWriter::with_capacity(16 + entries.len() * 2);
    out.u8(VERSION);
    out.varint(entries.len() as u64);
    times::encode(&starts, &mut out);
    let ints_of = |f: &dyn Fn(&(i64, Summary)) -> i64| entries.iter().map(f).collect::<Vec<i64>>();
    ints::write_all(&mut out, &ints_of(&|(_, s)| i64::from(s.count)));
    ints::write_all(&mut out, &ints_of(&|(b, s)| s.first.0.wrapping_sub(*b)));
    ints::write_all(&mut out, &ints_of(&|(b, s)| s.last.0.wrapping_sub(*b)));
    out.align();
    let mut bytes = out.into_bytes();
    let columns: [fn(&Summary) -> f64; 6] = [
        |s| s.first.1,
        |s| s.last.1,
        |s| s.min,
        |s| s.max,
        |s| s.sum,
        |s| s.increase,
    ];
    // When the readings are decimals with k places (a sensor's "21.3"), sums and increases are too; the
    // float arithmetic that computed them leaves noise in the last bits (127.80000000000001), which would
    // cost a whole mantissa per entry. Snapping them to k places gives the exact decimal instead.
    let readings: Vec<f64> = entries
        .iter()
        .flat_map(|(_, s)| [s.first.1, s.last.1, s.min, s.max])
        .collect();
    let places = values::as_decimals(&readings).map(|(k, _)| k);
    for (i, column) in columns.into_iter().enumerate() {
        let vs: Vec<f64> = entries
            .iter()
            .map(|(_, s)| column(s))
            .map(|v| match places {
                Some(k) if i >= 4 => snap(v, k),
                _ => v,
            })
            .collect();
        bytes.extend_from_slice(&values::encode(&vs));
    }
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    Ok(bytes)
}

/// `v` rounded to `k` decimal places, when that moves it by float noise only (at most 1e-12 relative).
fn snap(v: f64, k: u8) -> f64 {
    let p = 10f64.powi(i32::from(k));
    let m = (v * p).round();
    if m.abs() > (1u64 << 53) as f64 {
        return v;
    }
    let snapped = m / p;
    if (snapped - v).abs() <= 1e-12 * v.abs().max(1.0) {
        snapped
    } else {
        v
    }
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<(i64, Summary)>, BlockError> {
    if bytes.len() < 6 {
        return Err(BlockError::Truncated {
            expected: 6,
            got: bytes.len(),
        });
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(BlockError::Checksum {
            expected: stored,
            got: computed,
        });
    }
    let mut input = BitReader::new(body, 0);
    let version = input.u8()?;
    if version != VERSION {
        return Err(BlockError::UnknownVersion { version });
    }
    let count = usize::try_from(input.varint()?).unwrap_or(usize::MAX);
    // Every entry costs at least one bit in each of ten columns.
    if count == 0 || count > super::MAX_POINTS || count > body.len() * 8 / 10 {
        return Err(BlockError::Corrupt {
            reason: "rollup entry count out of range",
        });
    }
    let starts = times::decode(&mut input, count)?;
    let mut ints3 = [const { Vec::new() }; 3];
    for column in &mut ints3 {
        let unpacker = Unpacker::read_header(&mut input)?;
        for _ in 0..count {
            column.push(unpacker.next(&mut input)?);
        }
    }
    input.align()?;
    let mut floats = [const { Vec::new() }; 6];
    for column in &mut floats {
        *column = values::decode(&mut input, count)?;
    }
    input.finish()?;
    let [counts, firsts, lasts] = ints3;
    let [first_v, last_v, min, max, sum, increase] = floats;
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let start = starts[i];
        let s = Summary {
            count: u32::try_from(counts[i]).map_err(|_| BlockError::Corrupt {
                reason: "rollup count out of range",
            })?,
            first: (start.wrapping_add(firsts[i]), first_v[i]),
            last: (start.wrapping_add(lasts[i]), last_v[i]),
            min: min[i],
            max: max[i],
            sum: sum[i],
            increase: increase[i],
        };
        check(&s)?;
        if s.first.0 < start || starts.get(i + 1).is_some_and(|next| s.last.0 >= *next) {
            return Err(BlockError::Corrupt {
                reason: "rollup entry outside its bucket",
            });
        }
        out.push((start, s));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bit for bit, except sum and increase, which may be snapped to the readings' decimal places.
    fn same_but_rounding(x: &Summary, y: &Summary) -> bool {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(1.0);
        let exact = Summary {
            sum: x.sum,
            increase: x.increase,
            ..*y
        };
        super::super::same_bits(x, &exact) && close(x.sum, y.sum) && close(x.increase, y.increase)
    }

    fn summary(points: &[(i64, f64)]) -> Summary {
        super::super::summarize(points).expect("points")
    }

    #[test]
    fn hourly_temperatures_cost_a_few_bytes_per_hour() {
        let hour = 3_600_000_000_000i64;
        let entries: Vec<(i64, Summary)> = (0..24 * 30)
            .map(|h| {
                let pts: Vec<(i64, f64)> = (0..6)
                    .map(|i| {
                        let t = h * hour + i * hour / 6;
                        (t, f64::from((200 + (h + i) % 17) as i32) / 10.0)
                    })
                    .collect();
                (h * hour, summary(&pts))
            })
            .collect();
        let bytes = encode(&entries).expect("encode");
        let per_hour = bytes.len() as f64 / entries.len() as f64;
        assert!(per_hour < 4.0, "{per_hour} bytes per hour");
        let back = decode(&bytes).expect("decode");
        assert_eq!(back.len(), entries.len());
        for ((a, x), (b, y)) in entries.iter().zip(&back) {
            assert_eq!(a, b);
            assert!(same_but_rounding(x, y), "{x:?} vs {y:?}");
        }
    }

    proptest! {
        #[test]
        fn round_trips_and_never_panics(
            buckets in proptest::collection::btree_map(-1000i64..1000, proptest::collection::vec((0i64..100, -1e6f64..1e6), 1..5), 1..40),
            noise in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let width = 100;
            let entries: Vec<(i64, Summary)> = buckets
                .into_iter()
                .map(|(b, pts)| {
                    let mut pts: Vec<(i64, f64)> = pts.into_iter().map(|(o, v)| (b * width + o, v)).collect();
                    pts.sort_by_key(|p| p.0);
                    pts.dedup_by_key(|p| p.0);
                    (b * width, summary(&pts))
                })
                .collect();
            let bytes = encode(&entries).expect("encode");
            let back = decode(&bytes).expect("decode");
            prop_assert_eq!(back.len(), entries.len());
            for ((a, x), (b, y)) in entries.iter().zip(&back) {
                prop_assert_eq!(a, b);
                prop_assert!(same_but_rounding(x, y), "{:?} vs {:?}", x, y);
            }
            let _ = decode(&noise);
            let mut damaged = bytes.clone();
            let i = noise.len() % damaged.len();
            damaged[i] ^= 0x10;
            prop_assert!(decode(&damaged).is_err());
        }
    }
}
