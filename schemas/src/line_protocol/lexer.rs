//! The byte-level pieces of the line protocol parser: scanning with backslash escapes, unescaping, and the
//! number grammar InfluxDB accepts.

use std::borrow::Cow;

/// `-?[0-9]+`, what InfluxDB accepts for integers and timestamps (no `+`, no spaces, no `_`), as an `i64` in
/// one pass: `None` when `s` is not in that grammar, `Some(None)` when it is out of range.
pub(super) fn parse_integer(s: &str) -> Option<Option<i64>> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    // Accumulated with the sign of the result, so `i64::MIN` fits.
    let mut value = Some(0i64);
    for b in digits.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(b - b'0');
        value = value.and_then(|v| v.checked_mul(10)).and_then(|v| {
            if negative {
                v.checked_sub(digit)
            } else {
                v.checked_add(digit)
            }
        });
    }
    Some(value)
}

/// `-?(digits[.digits?] | .digits)([eE][+-]?digits)?` — so `NaN`, `inf` and `+1` are refused before `f64` parsing.
pub(super) fn is_float_literal(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = usize::from(bytes.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let mut mantissa = digits(&mut i);
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        mantissa += digits(&mut i);
    }
    if mantissa == 0 {
        return false;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == bytes.len()
}

/// Resolves `\x` to `x` when `x` is a backslash or one of `escapable`; keeps other backslashes as written.
/// Borrows when there is no backslash, which is almost always.
pub(super) fn unescape<'a>(raw: &'a str, escapable: &[u8]) -> Cow<'a, str> {
    if !raw.as_bytes().contains(&b'\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        let escaped =
            |n: &char| *n == '\\' || u8::try_from(*n).is_ok_and(|b| escapable.contains(&b));
        if c == '\\'
            && let Some(next) = chars.next_if(escaped)
        {
            out.push(next);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A position in one line. It only ever stops on an ASCII delimiter or the end, so every slice it takes lies on
/// `char` boundaries (UTF-8 continuation bytes are never ASCII).
#[derive(Debug)]
pub(super) struct Cursor<'a> {
    pub(super) text: &'a str,
    pub(super) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    pub(super) fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    pub(super) fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.pos += usize::from(found);
        found
    }

    pub(super) fn skip_spaces(&mut self) -> usize {
        let start = self.pos;
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
        self.pos - start
    }

    pub(super) fn slice_from(&self, start: usize) -> &'a str {
        self.text.get(start..self.pos).unwrap_or_default()
    }

    /// Up to the first byte in `stops` or the end; no escapes (field values and timestamps).
    #[inline]
    pub(super) fn take_until(&mut self, stops: &[u8]) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(|b| !stops.contains(&b)) {
            self.pos += 1;
        }
        self.slice_from(start)
    }

    /// Up to the first unescaped byte in `stops` or the end; a backslash always shields the byte after it.
    #[inline]
    pub(super) fn take_escaped(&mut self, stops: &[u8]) -> &'a str {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let mut pos = start;
        while let Some(&b) = bytes.get(pos) {
            if b == b'\\' {
                pos += 2;
            } else if stops.contains(&b) {
                break;
            } else {
                pos += 1;
            }
        }
        self.pos = pos.min(bytes.len());
        self.slice_from(start)
    }

    /// At an opening `"`: the raw text up to the closing unescaped `"`, leaving the cursor after it.
    pub(super) fn take_quoted(&mut self) -> Option<&'a str> {
        self.pos += 1;
        let start = self.pos;
        loop {
            match self.peek()? {
                b'\\' => self.pos += 2,
                b'"' => break,
                _ => self.pos += 1,
            }
        }
        let body = self.slice_from(start);
        self.pos += 1;
        Some(body)
    }
}
