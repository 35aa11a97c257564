//! Values: a codec byte, then one of two encodings, whichever is shorter for this block.
//!
//! - `XOR` (Gorilla, VLDB 2015 §4.1.2): the first value's 64 bits, then per value `0` if it repeats, else
//!   `1` + `0` + the XOR's meaningful bits inside the previous leading/trailing-zero window, or `1` + `1` +
//!   5 bits of leading zeros + 6 bits of length − 1 + the meaningful bits. Bit-exact for every finite f64.
//! - `DECIMAL`: when every value is exactly `m / 10^k` for integers `|m| <= 2^53` and one `k <= 9` (what a
//!   sensor's "21.3" or a meter's "12345.678" parses to), `k: u8`, then the deltas of `m` (the first from
//!   zero) packed by [`super::ints`]. A reading that changes by a few tenths costs a few
//!   bits, where XOR spends most of a mantissa on it.
//!
//! Both end with padding to a byte. The choice is made by encoding both, so no heuristic can pick the worse.
use super::bits::{BitReader, BitWriter};
use super::error::BlockError;
use super::ints::{self, Unpacker};

const XOR: u8 = 0;
const DECIMAL: u8 = 1;

/// Powers of ten, all exact in f64, so `m / 10^k` is the correctly rounded decimal.
const POW10: [f64; 10] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
/// Integers up to this magnitude are exact in f64.
const MAX_EXACT: i64 = 1 << 53;

pub(crate) fn encode(values: &[f64]) -> Vec<u8> {
    let xor = encode_xor(values);
    match as_decimals(values) {
        Some((k, ms)) => {
            let decimal = encode_decimal(k, &ms);
            if decimal.len() < xor.len() {
                decimal
            } else {
                xor
            }
        }
        None => xor,
    }
}

pub(crate) fn decode(input: &mut BitReader<'_>, count: usize) -> Result<Vec<f64>, BlockError> {
    let mut slots = vec![(0i64, 0f64); count];
    decode_into(input, &mut slots)?;
    input.align()?;
    Ok(slots.into_iter().map(|p| p.1).collect())
}

/// Decodes one value into the `.1` of every slot, in order (the padding after the section is left for the
/// caller: it is only there when every value was read).
pub(crate) fn decode_into(
    input: &mut BitReader<'_>,
    slots: &mut [(i64, f64)],
) -> Result<(), BlockError> {
    match input.u8()? {
        XOR => decode_xor(input, slots)?,
        DECIMAL => decode_decimal(input, slots)?,
        _ => {
            return Err(BlockError::Corrupt {
                reason: "unknown value codec",
            });
        }
    }
    Ok(())
}

fn encode_xor(values: &[f64]) -> Vec<u8> {
    let mut out = BitWriter::with_capacity(9 + values.len());
    out.u8(XOR);
    let Some(first) = values.first() else {
        return out.into_bytes();
    };
    let mut prev = first.to_bits();
    out.bits(prev, 64);
    // (leading zeros, trailing zeros) of the last window written.
    let mut window: Option<(u32, u32)> = None;
    for v in values.iter().skip(1) {
        let bits = v.to_bits();
        let xor = bits ^ prev;
        prev = bits;
        if xor == 0 {
            out.bit(false);
            continue;
        }
        out.bit(true);
        // Five bits hold the leading-zero count; a larger count just widens the window.
        let leading = xor.leading_zeros().min(31);
        let trailing = xor.trailing_zeros();
        match window {
            Some((wl, wt)) if leading >= wl && trailing >= wt => {
                out.bit(false);
                out.bits(xor >> wt, 64 - wl - wt);
            }
            _ => {
                let len = 64 - leading - trailing;
                out.bit(true);
                out.bits(u64::from(leading), 5);
                out.bits(u64::from(len - 1), 6);
                out.bits(xor >> trailing, len);
                window = Some((leading, trailing));
            }
        }
    }
    out.align();
    out.into_bytes()
}

fn decode_xor(input: &mut BitReader<'_>, slots: &mut [(i64, f64)]) -> Result<(), BlockError> {
    let Some((first, rest)) = slots.split_first_mut() else {
        return Ok(());
    };
    let mut prev = input.bits(64)?;
    first.1 = finite(prev)?;
    let mut window: Option<(u32, u32)> = None;
    for slot in rest {
        if input.bit()? {
            let (leading, trailing) = if input.bit()? {
                let leading = input.bits(5)? as u32;
                let len = input.bits(6)? as u32 + 1;
                let trailing = 64u32
                    .checked_sub(leading + len)
                    .ok_or(BlockError::Corrupt {
                        reason: "XOR window wider than 64 bits",
                    })?;
                window = Some((leading, trailing));
                (leading, trailing)
            } else {
                window.ok_or(BlockError::Corrupt {
                    reason: "XOR window reused before it was set",
                })?
            };
            // leading + trailing <= 63 for every window, so the shift is in range.
            prev ^= input.bits(64 - leading - trailing)? << trailing;
        }
        slot.1 = finite(prev)?;
    }
    Ok(())
}

fn finite(bits: u64) -> Result<f64, BlockError> {
    let v = f64::from_bits(bits);
    if v.is_finite() {
        Ok(v)
    } else {
        Err(BlockError::Corrupt {
            reason: "non-finite value",
        })
    }
}

/// The smallest number of decimals `k` for which every value is exactly `m / 10^k`, with the `m`s.
pub(crate) fn as_decimals(values: &[f64]) -> Option<(u8, Vec<i64>)> {
    'k: for (k, &p) in POW10.iter().enumerate() {
        let mut ms = Vec::with_capacity(values.len());
        for &v in values {
            let m = (v * p).round();
            if m.abs() > MAX_EXACT as f64 {
                continue 'k;
            }
            let m = m as i64;
            // Through the integer, so -0.0 (which would come back as +0.0) is rejected.
            if (m as f64 / p).to_bits() != v.to_bits() {
                continue 'k;
            }
            ms.push(m);
        }
        return Some((k as u8, ms));
    }
    None
}

fn encode_decimal(k: u8, ms: &[i64]) -> Vec<u8> {
    let mut prev = 0i64;
    let deltas: Vec<i64> = ms
        .iter()
        .map(|&m| {
            // |m|, |prev| <= 2^53: no overflow.
            let delta = m - prev;
            prev = m;
            delta
        })
        .collect();
    let mut out = BitWriter::with_capacity(8 + ms.len());
    out.u8(DECIMAL);
    out.u8(k);
    ints::write_all(&mut out, &deltas);
    out.align();
    out.into_bytes()
}

fn decode_decimal(input: &mut BitReader<'_>, slots: &mut [(i64, f64)]) -> Result<(), BlockError> {
    let k = input.u8()?;
    let p = *POW10.get(usize::from(k)).ok_or(BlockError::Corrupt {
        reason: "more than 9 decimals",
    })?;
    let deltas = Unpacker::read_header(input)?;
    let mut m = 0i64;
    for slot in slots {
        m = m.wrapping_add(deltas.next(input)?);
        if !(-MAX_EXACT..=MAX_EXACT).contains(&m) {
            return Err(BlockError::Corrupt {
                reason: "decimal mantissa beyond 2^53",
            });
        }
        slot.1 = m as f64 / p;
    }
    Ok(())
}
