//! Timestamps: `scale: u8`, the first timestamp as a zigzag varint, then one delta-of-delta per further
//! point, packed by [`super::ints`], then padding to a byte.
//!
//! Offsets from the first timestamp are divided by the largest power of ten (up to 10^18) that divides them
//! all: times are nanoseconds but devices stamp in seconds or milliseconds, and one-second jitter should cost
//! a few bits, not thirty. A regular series has every delta-of-delta zero: one bit per timestamp.
//! Arithmetic on offsets is wrapping `u64`, which is exact because every offset is below 2^64, so even
//! `i64::MIN..=i64::MAX` round-trips.
use super::bits::{BitReader, BitWriter, unzigzag, zigzag};
use super::error::BlockError;
use super::ints::{self, Unpacker};

const MAX_SCALE: u32 = 18;

pub(crate) fn encode(times: &[i64], out: &mut BitWriter) {
    let Some(&t0) = times.first() else {
        return;
    };
    let offsets: Vec<u64> = times.iter().map(|t| t.wrapping_sub(t0) as u64).collect();
    let mut scale = 0;
    while scale < MAX_SCALE {
        let next = 10u64.pow(scale + 1);
        if !offsets.iter().all(|o| o % next == 0) {
            break;
        }
        scale += 1;
    }
    let divisor = 10u64.pow(scale);
    let mut prev = (0u64, 0u64); // (offset, delta), scaled
    let dods: Vec<i64> = offsets
        .iter()
        .skip(1)
        .map(|o| {
            let u = o / divisor;
            let delta = u.wrapping_sub(prev.0);
            let dod = delta.wrapping_sub(prev.1) as i64;
            prev = (u, delta);
            dod
        })
        .collect();
    out.u8(scale as u8);
    out.varint(zigzag(t0));
    ints::write_all(out, &dods);
    out.align();
}

pub(crate) fn decode(input: &mut BitReader<'_>, count: usize) -> Result<Vec<i64>, BlockError> {
    let mut out = Vec::with_capacity(count);
    decode_into(input, count, &mut out)?;
    Ok(out.into_iter().map(|p| p.0).collect())
}

/// Appends `(time, 0.0)` for each of `count` timestamps.
pub(crate) fn decode_into(
    input: &mut BitReader<'_>,
    count: usize,
    times: &mut Vec<(i64, f64)>,
) -> Result<(), BlockError> {
    if count == 0 {
        return Ok(());
    }
    let scale = u32::from(input.u8()?);
    if scale > MAX_SCALE {
        return Err(BlockError::Corrupt {
            reason: "timestamp scale above 10^18",
        });
    }
    let t0 = unzigzag(input.varint()?);
    let dods = Unpacker::read_header(input)?;
    let divisor = 10u64.pow(scale);
    times.reserve(count);
    times.push((t0, 0.0));
    let (mut offset, mut delta, mut last) = (0u64, 0u64, t0);
    for _ in 1..count {
        let dod = dods.next(input)?;
        delta = delta.wrapping_add(dod as u64);
        offset = offset.wrapping_add(delta);
        // A real offset from t0 is below 2^64, so a product that overflows is corrupt. Adding it with wrapping
        // gives the true time when that is an i64, and otherwise a time below t0 — which the check that times
        // increase refuses.
        let scaled = offset.checked_mul(divisor).ok_or(BlockError::Corrupt {
            reason: "timestamp out of range",
        })?;
        let t = t0.wrapping_add(scaled as i64);
        if t <= last {
            return Err(BlockError::Corrupt {
                reason: "timestamps not increasing",
            });
        }
        times.push((t, 0.0));
        last = t;
    }
    input.align()
}
