//! Bit-packing of a run of signed integers (deltas or deltas-of-deltas) with parameters fitted per block.
//!
//! Header: the run's median as a zigzag varint, then `width: u8`. Each integer is stored as the zigzag of
//! its distance from the median: `0` + `width` bits when that fits, else `1` + 6 bits (its own width − 1) +
//! its bits. The encoder picks the width that minimises the total, so a regular series (all zeros) costs
//! one bit per point, a rare outlier does not widen every other point, and a counter that only rises does
//! not pay a sign bit — Gorilla's fixed buckets, fitted to the block. Arithmetic wraps, so every `i64`
//! round-trips.
use super::bits::{BitReader, BitWriter, unzigzag, zigzag};
use super::error::BlockError;

const ESCAPE_WIDTH_BITS: u32 = 6;

fn width(z: u64) -> u32 {
    64 - z.leading_zeros()
}

/// Writes the header and every value of `values`.
pub(crate) fn write_all(out: &mut BitWriter, values: &[i64]) {
    let mut scratch = values.to_vec();
    let middle = scratch.len() / 2;
    let base = if scratch.is_empty() {
        0
    } else {
        // The median (the element a sort would put in the middle), in linear time.
        *scratch.select_nth_unstable(middle).1
    };
    let zs: Vec<u64> = values
        .iter()
        .map(|v| zigzag(v.wrapping_sub(base)))
        .collect();
    let width_bits = best_width(&zs);
    out.varint(zigzag(base));
    out.u8(width_bits as u8);
    for &z in &zs {
        if width(z) <= width_bits {
            out.bit(false);
            out.bits(z, width_bits);
        } else {
            // Its width is at least 1, because it does not fit in `width_bits` >= 0.
            out.bit(true);
            out.bits(u64::from(width(z) - 1), ESCAPE_WIDTH_BITS);
            out.bits(z, width(z));
        }
    }
}

/// The width in `0..=64` that encodes `zs` in the fewest bits (the narrowest on a tie).
fn best_width(zs: &[u64]) -> u32 {
    let mut histogram = [0u64; 65];
    for &z in zs {
        if let Some(slot) = histogram.get_mut(width(z) as usize) {
            *slot += 1;
        }
    }
    let mut best = (u64::MAX, 64);
    for w in 0..=64u32 {
        let cost: u64 = histogram
            .iter()
            .zip(0u64..)
            .map(|(&count, b)| {
                let per = if b <= u64::from(w) {
                    1 + u64::from(w)
                } else {
                    1 + u64::from(ESCAPE_WIDTH_BITS) + b
                };
                count * per
            })
            .sum();
        if cost < best.0 {
            best = (cost, w);
        }
    }
    best.1
}

/// Reads values written by [`write_all`], one at a time.
#[derive(Debug)]
pub(crate) struct Unpacker {
    base: i64,
    width: u32,
}

impl Unpacker {
    pub(crate) fn read_header(input: &mut BitReader<'_>) -> Result<Self, BlockError> {
        let base = unzigzag(input.varint()?);
        let width = u32::from(input.u8()?);
        if width > 64 {
            return Err(BlockError::Corrupt {
                reason: "bit width above 64",
            });
        }
        Ok(Self { base, width })
    }

    pub(crate) fn next(&self, input: &mut BitReader<'_>) -> Result<i64, BlockError> {
        // Fast path: the flag and a fitting value in one read.
        if let Some(v) = input.peek(1 + self.width)
            && v >> self.width == 0
        {
            input.skip(1 + self.width);
            return Ok(unzigzag(v).wrapping_add(self.base));
        }
        let z = if !input.bit()? {
            input.bits(self.width)?
        } else {
            let n = input.bits(ESCAPE_WIDTH_BITS)? as u32 + 1;
            input.bits(n)?
        };
        Ok(unzigzag(z).wrapping_add(self.base))
    }
}
