//! Durations as people write them in rules and silences: a whole number and a unit (`500ms`, `30s`, `15m`,
//! `2h`, `1d`), as nanoseconds.

/// `None` unless `text` is a whole number and one of `ms`, `s`, `m`, `h`, `d` (and fits in nanoseconds).
pub fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().ok()?;
    let unit_ns: i64 = match unit {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        _ => return None,
    };
    n.checked_mul(unit_ns)
}

/// A duration for people: `2s`, `15m`, `1h 30m`, `3d 2h`.
pub fn human(ns: i64) -> String {
    let s = ns.max(0) / 1_000_000_000;
    if s < 60 {
        return format!("{s}s");
    }
    let (d, h, m) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60);
    match (d, h, m) {
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn durations_read_and_print() {
        assert_eq!(parse_duration("2s"), Some(2_000_000_000));
        assert_eq!(parse_duration("15m"), Some(900_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        for bad in ["", "s", "5", "5 m", "-5s", "5w", "99999999999999d", "1.5h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(human(90 * 60 * 1_000_000_000), "1h 30m");
        assert_eq!(human(2_000_000_000), "2s");
    }

    proptest! {
        #[test]
        fn any_text_parses_or_not_without_panicking(text in ".{0,24}") {
            let _ = parse_duration(&text);
        }
    }
}
