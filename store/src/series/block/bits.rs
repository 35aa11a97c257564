//! MSB-first bit writer and bounds-checked bit reader. Byte-level fields (`u8`, varints) go through the same
//! stream, so a block's payload is one cursor; sections are byte-aligned with zero padding, which the reader
//! checks, so a block has exactly one valid encoding of its padding.
use super::error::BlockError;

#[derive(Debug, Default)]
pub(crate) struct BitWriter {
    bytes: Vec<u8>,
    /// Bits not yet written out, right-aligned; fewer than 8 between calls.
    pending: u64,
    pending_bits: u32,
}

impl BitWriter {
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            pending: 0,
            pending_bits: 0,
        }
    }

    pub(crate) fn bit(&mut self, bit: bool) {
        self.bits(u64::from(bit), 1);
    }

    /// Writes the low `n` bits of `value`, most significant first. `n` is at most 64.
    pub(crate) fn bits(&mut self, value: u64, n: u32) {
        debug_assert!(n <= 64);
        let n = n.min(64);
        if n > 32 {
            // Two halves keep the pending bits within 64 (at most 7 + 32).
            self.bits(value >> 32, n - 32);
            self.bits(value & 0xffff_ffff, 32);
            return;
        }
        if n == 0 {
            return;
        }
        let value = value & ((1u64 << n) - 1);
        self.pending = (self.pending << n) | value;
        self.pending_bits += n;
        while self.pending_bits >= 8 {
            self.pending_bits -= 8;
            self.bytes.push((self.pending >> self.pending_bits) as u8);
        }
        self.pending &= (1u64 << self.pending_bits) - 1;
    }

    pub(crate) fn u8(&mut self, value: u8) {
        self.bits(u64::from(value), 8);
    }

    /// LEB128: seven bits per byte, least significant group first.
    pub(crate) fn varint(&mut self, mut value: u64) {
        loop {
            let group = value & 0x7f;
            value >>= 7;
            if value == 0 {
                self.u8(group as u8);
                return;
            }
            self.u8(group as u8 | 0x80);
        }
    }

    /// Pads the current byte with zeros.
    pub(crate) fn align(&mut self) {
        if self.pending_bits > 0 {
            self.bytes
                .push((self.pending << (8 - self.pending_bits)) as u8);
            self.pending = 0;
            self.pending_bits = 0;
        }
    }

    pub(crate) fn into_bytes(mut self) -> Vec<u8> {
        self.align();
        self.bytes
    }
}

#[derive(Debug)]
pub(crate) struct BitReader<'a> {
    bytes: &'a [u8],
    /// Position in bits.
    pos: usize,
    /// Where `bytes` starts within the block, so `Truncated` reports block offsets.
    base: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(bytes: &'a [u8], base: usize) -> Self {
        Self {
            bytes,
            pos: 0,
            base,
        }
    }

    pub(crate) fn bit(&mut self) -> Result<bool, BlockError> {
        match self.bytes.get(self.pos / 8) {
            Some(byte) => {
                let bit = (byte >> (7 - self.pos % 8)) & 1;
                self.pos += 1;
                Ok(bit == 1)
            }
            None => Ok(self.bits(1)? == 1),
        }
    }

    /// The next `n` bits (1..=56) without consuming them, when the 8 bytes from the current byte exist
    /// (`None` near the end: use `bits`).
    pub(crate) fn peek(&self, n: u32) -> Option<u64> {
        if !(1..=56).contains(&n) {
            return None;
        }
        let window = self.bytes.get(self.pos / 8..self.pos / 8 + 8)?;
        let window = <[u8; 8]>::try_from(window).ok()?;
        let offset = (self.pos % 8) as u32;
        Some((u64::from_be_bytes(window) << offset) >> (64 - n))
    }

    /// Consumes bits `peek` returned.
    pub(crate) fn skip(&mut self, n: u32) {
        self.pos += n as usize;
    }

    /// Reads `n` bits (at most 64), most significant first.
    pub(crate) fn bits(&mut self, n: u32) -> Result<u64, BlockError> {
        // Fast path: the field lies within the 8 bytes from the current byte (offset <= 7, n <= 56).
        if (1..=56).contains(&n)
            && let Some(window) = self
                .bytes
                .get(self.pos / 8..self.pos / 8 + 8)
                .and_then(|w| <[u8; 8]>::try_from(w).ok())
        {
            let offset = (self.pos % 8) as u32;
            self.pos += n as usize;
            return Ok((u64::from_be_bytes(window) << offset) >> (64 - n));
        }
        if n > 64 {
            return Err(BlockError::Corrupt {
                reason: "bit field wider than 64 bits",
            });
        }
        let end = self.pos + n as usize;
        if end > self.bytes.len() * 8 {
            return Err(BlockError::Truncated {
                expected: self.base + end.div_ceil(8),
                got: self.base + self.bytes.len(),
            });
        }
        let mut value = 0u64;
        let mut left = n;
        while left > 0 {
            let byte = self.bytes.get(self.pos / 8).copied().unwrap_or(0);
            let offset = (self.pos % 8) as u32;
            let avail = 8 - offset;
            let take = avail.min(left);
            let chunk = (u64::from(byte) >> (avail - take)) & ((1u64 << take) - 1);
            // `take` < 64 here, and when n == 64 the first shift discards only zeros.
            value = (value << take) | chunk;
            self.pos += take as usize;
            left -= take;
        }
        Ok(value)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, BlockError> {
        Ok(self.bits(8)? as u8)
    }

    pub(crate) fn varint(&mut self) -> Result<u64, BlockError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let group = u64::from(byte & 0x7f);
            if shift == 63 && group > 1 {
                return Err(BlockError::Corrupt {
                    reason: "varint overflows 64 bits",
                });
            }
            value |= group << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(BlockError::Corrupt {
            reason: "varint longer than 10 bytes",
        })
    }

    /// Skips to the next byte boundary; the skipped bits must be zero.
    pub(crate) fn align(&mut self) -> Result<(), BlockError> {
        let pad = (8 - self.pos % 8) % 8;
        if self.bits(pad as u32)? != 0 {
            return Err(BlockError::Corrupt {
                reason: "nonzero padding",
            });
        }
        Ok(())
    }

    /// Checks that the whole input was consumed.
    pub(crate) fn finish(mut self) -> Result<(), BlockError> {
        self.align()?;
        if self.pos != self.bytes.len() * 8 {
            return Err(BlockError::Corrupt {
                reason: "trailing bytes after the points",
            });
        }
        Ok(())
    }
}

/// Maps signed to unsigned so small magnitudes of either sign have few significant bits.
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(crate) fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}
