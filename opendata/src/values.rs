//! Published values: numbers canonical to ten significant digits, and their CSV spelling (numbers and fields).

/// Values with ten significant digits: the same data read from raw points or from rollups (sums in another
/// order) differ in the last bits, and a published file must not change for that.
/// Not-a-number and infinities (an overflowing sum) are published as empty, `-0` as `0`.
pub(crate) fn canonical(v: f64) -> Option<f64> {
    if !v.is_finite() {
        return None;
    }
    if v == 0.0 {
        return Some(0.0);
    }
    let rounded: f64 = format!("{v:.9e}").parse().unwrap_or(v);
    Some(if rounded.is_finite() { rounded } else { v })
}

/// A CSV number: plain decimals, exponent form for the very large and very small (as JSON would).
pub(crate) fn csv_number(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e16 || v.abs() < 1e-5) {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

/// A CSV field (RFC 4180): quoted when it holds the separator, a quote or a line break.
pub(crate) fn csv_field(s: &str, separator: char) -> String {
    if s.contains([separator, '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::{canonical, csv_number};

    #[test]
    fn published_values_are_canonical() {
        assert_eq!(canonical(f64::NAN), None);
        assert_eq!(canonical(f64::INFINITY), None);
        assert_eq!(canonical(-0.0).map(f64::to_bits), Some(0.0f64.to_bits()));
        assert_eq!(canonical(f64::MAX), Some(f64::MAX));
        assert_eq!(canonical(0.1 + 0.2), Some(0.3));
        assert_eq!(canonical(1e-310), Some(1e-310));
        assert_eq!(csv_number(94.0), "94");
        assert_eq!(csv_number(0.25), "0.25");
        assert_eq!(csv_number(1e21), "1e21");
        assert_eq!(csv_number(1e-310), "1e-310");
    }
}
