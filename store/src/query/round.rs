//! Numbers without float noise. Aggregates add and divide binary floats, so a sum of readings written as
//! `100.521` comes out as `100.52100000000064`. Answers (JSON, CSV, KPIs) round every computed value to
//! [`SIGNIFICANT`] significant digits: far more than any sensor measures, and far fewer than the ~16 where
//! the noise of a few thousand additions lives. Raw points are never rounded: they are what was written.

/// Significant digits of a computed value in an answer.
pub const SIGNIFICANT: usize = 12;

/// `v` rounded to [`SIGNIFICANT`] significant digits; non-finite values unchanged. The result prints (Rust's
/// shortest round-trip form, as serde_json and `to_string` use) without the noise: `100.521`, `15.07815`.
pub fn round(v: f64) -> f64 {
    if !v.is_finite() || v == 0.0 {
        return v;
    }
    // Scientific notation with SIGNIFICANT digits is decimal rounding done by the formatter (correctly
    // rounded), and parsing it back gives the float nearest to that decimal.
    format!("{:.*e}", SIGNIFICANT - 1, v).parse().unwrap_or(v)
}

/// `round` over an optional value.
pub fn round_opt(v: Option<f64>) -> Option<f64> {
    v.map(round)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn noise_goes_and_data_stays() {
        let cases = [
            (100.52100000000064, "100.521"),
            (15.078150000000095, "15.07815"),
            (0.1 + 0.2, "0.3"),
            (21.5, "21.5"),
            (-3.0000000000000004, "-3"),
            (1.0 / 3.0, "0.333333333333"),
            (123456789.123, "123456789.123"),
            (6.02214076e23, "602214076000000000000000"),
            (1.5e-9, "0.0000000015"),
            (0.0, "0"),
        ];
        for (v, text) in cases {
            assert_eq!(round(v).to_string(), text, "{v}");
        }
        assert!(round(f64::NAN).is_nan());
        assert_eq!(round(f64::INFINITY), f64::INFINITY);
    }

    #[test]
    fn summed_readings_print_as_written() {
        // Meter readings with three decimals, summed as an aggregate would.
        let readings = [12.345, 0.001, 7.7, 80.475];
        let sum: f64 = readings.iter().sum();
        assert_eq!(round(sum).to_string(), "100.521");
    }

    proptest! {
        #[test]
        fn rounding_moves_a_value_by_less_than_its_twelfth_digit(v in any::<f64>()) {
            let r = round(v);
            if v.is_finite() {
                prop_assert!((r - v).abs() <= v.abs() * 1e-11, "{} -> {}", v, r);
                prop_assert_eq!(round(r), r);
            } else {
                prop_assert!(r.is_nan() == v.is_nan());
            }
        }
    }
}
