//! Why a query was refused as too large: what it would cost, the limit, and how to narrow it — with the
//! numbers a client needs to choose (a wider bucket and what it gives, how long a range fits).
use super::every::Every;
use std::fmt;

/// A query over one of its `Limits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TooLarge {
    /// More series match than `max_series`.
    Series { matched: u64, limit: u64 },
    /// A bucketed answer over `max_values`.
    Values {
        /// Answer series: series, or groups with `group_by`.
        rows: u64,
        grouped: bool,
        buckets: u64,
        every: Every,
        limit: u64,
        /// The narrowest wider bucket that fits, and its buckets per answer series.
        wider: Option<(Every, u64)>,
    },
    /// A raw answer whose estimated points exceed `max_raw_points`.
    RawPoints {
        estimated: u64,
        series: u64,
        limit: u64,
        /// The narrowest bucket that fits as an aggregate, and its buckets per series.
        aggregate: Option<(Every, u64)>,
    },
    /// A raw answer that passed `max_raw_points` while being read (its estimate was lower).
    RawPointsRead { limit: u64 },
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A span of seconds in the largest unit that keeps it at least 2: "about 52 days", "about 36 hours".
fn about(secs: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (86_400, "days"),
        (3600, "hours"),
        (60, "minutes"),
        (1, "seconds"),
    ];
    let (size, name) = UNITS
        .iter()
        .find(|(size, _)| secs >= 2 * size)
        .copied()
        .unwrap_or((1, "seconds"));
    format!("about {} {name}", thousands(secs / size))
}

/// "a, b or c".
fn either(hints: &[String]) -> String {
    match hints {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

const FEWER_SERIES: &str = "fewer series (device=…, tag.KEY=…)";

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TooLarge::Series { matched, limit } => write!(
                f,
                "this query matches {} series; the limit is {}. Narrow it to fewer series with device=… or tag.KEY=… (group_by merges series but still reads every one of them)",
                thousands(*matched),
                thousands(*limit)
            ),
            TooLarge::Values {
                rows,
                grouped,
                buckets,
                every,
                limit,
                wider,
            } => {
                let noun = if *grouped { "groups" } else { "series" };
                let per = if *grouped { "group" } else { "series" };
                write!(
                    f,
                    "this query would return {} {noun} × {} buckets = {} values; the limit is {}. Narrow it: ",
                    thousands(*rows),
                    thousands(*buckets),
                    thousands(rows.saturating_mul(*buckets)),
                    thousands(*limit)
                )?;
                let mut hints = Vec::new();
                if let Some((w, n)) = wider {
                    hints.push(format!(
                        "a wider bucket (every={w} gives {} per {per})",
                        thousands(*n)
                    ));
                }
                let fit = limit / rows.max(&1);
                if fit >= 1 {
                    hints.push(format!(
                        "a shorter range (from/to: at most {} buckets of {every}, {})",
                        thousands(fit),
                        about(fit.saturating_mul(every.approximate_secs()))
                    ));
                }
                if *grouped {
                    hints.push(
                        "fewer groups (tag.KEY=…, or group_by a tag with fewer values)".into(),
                    );
                } else {
                    let fit = limit / buckets.max(&1);
                    hints.push(if fit >= 1 {
                        format!(
                            "fewer series (at most {}: device=…, tag.KEY=…)",
                            thousands(fit)
                        )
                    } else {
                        FEWER_SERIES.into()
                    });
                    hints.push("group_by=KEY".into());
                }
                write!(f, "{}.", either(&hints))
            }
            TooLarge::RawPoints {
                estimated,
                series,
                limit,
                aggregate,
            } => {
                write!(
                    f,
                    "this query would return about {} raw points from {} series; the limit is {}. Narrow it: ",
                    thousands(*estimated),
                    thousands(*series),
                    thousands(*limit)
                )?;
                let aggregate = match aggregate {
                    Some((w, n)) => format!(
                        "buckets instead of raw points (every={w}&fn=mean gives {} per series)",
                        thousands(*n)
                    ),
                    None => "buckets instead of raw points (every and fn)".into(),
                };
                write!(
                    f,
                    "{}.",
                    either(&[
                        aggregate,
                        "a shorter range (from/to)".into(),
                        FEWER_SERIES.into()
                    ])
                )
            }
            TooLarge::RawPointsRead { limit } => write!(
                f,
                "this query returns more than {} raw points. Narrow it: {}.",
                thousands(*limit),
                either(&[
                    "buckets instead of raw points (every and fn)".into(),
                    "a shorter range (from/to)".into(),
                    FEWER_SERIES.into(),
                ])
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{Limits, Query, bucket_bounds};
    use crate::series::SeriesFilter;
    use bydata_schemas::parse_rfc3339;

    fn query(from: &str, to: &str, every: &str) -> Query {
        Query {
            filter: SeriesFilter {
                scope: None,
                measurement: None,
                field: None,
                tags: Default::default(),
            },
            from: parse_rfc3339(from).expect("time"),
            to: parse_rfc3339(to).expect("time"),
            every: Some(every.parse().expect("every")),
            func: crate::query::AggFn::Mean,
            group_by: None,
            tz: chrono_tz::Tz::UTC,
        }
    }

    #[test]
    fn thousands_and_spans_read_naturally() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(19_200_000), "19,200,000");
        assert_eq!(about(5000 * 900), "about 52 days");
        assert_eq!(about(7200), "about 2 hours");
        assert_eq!(about(90), "about 90 seconds");
    }

    #[test]
    fn a_values_refusal_says_what_fits() {
        // 1,000 days of 15-minute buckets for 200 series.
        let q = query("2023-01-01T00:00:00Z", "2025-09-27T00:00:00Z", "15m");
        let buckets = bucket_bounds(q.from, q.to, q.every.expect("every"), q.tz)
            .expect("bounds")
            .len() as u64
            - 1;
        assert_eq!(buckets, 96_000);
        let refusal = TooLarge::values(&q, 200, false, buckets, &Limits::default());
        assert_eq!(
            refusal.to_string(),
            "this query would return 200 series × 96,000 buckets = 19,200,000 values; the limit is 1,000,000. \
             Narrow it: a wider bucket (every=1d gives 1,000 per series), a shorter range (from/to: at most 5,000 \
             buckets of 15m, about 52 days), fewer series (at most 10: device=…, tag.KEY=…) or group_by=KEY."
        );
    }

    #[test]
    fn a_raw_refusal_suggests_buckets() {
        let q = query("2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z", "1h");
        let refusal = TooLarge::raw(&q, 2_400_000, 24, &Limits::default());
        assert_eq!(
            refusal.to_string(),
            "this query would return about 2,400,000 raw points from 24 series; the limit is 200,000. Narrow it: \
             buckets instead of raw points (every=1h&fn=mean gives 24 per series), a shorter range (from/to) or \
             fewer series (device=…, tag.KEY=…)."
        );
    }
}
