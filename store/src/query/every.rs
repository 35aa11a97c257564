//! Bucket widths (`every=`): fixed (`30s`, `15m`, `1h`) or calendar (`1d`, `1w`, `1mo`, `1y`). Parsing a width
//! (`FromStr`) lives with the query in `mod.rs`, since its error is the crate's `Error`, which holds a
//! `TooLarge` that names a width: keeping it there keeps this file free of imports.
use std::fmt;

pub(super) const NANOS_PER_SEC: i64 = 1_000_000_000;

/// A bucket width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    /// A fixed number of nanoseconds (`s`, `m`, `h`).
    Fixed(i64),
    Days(u32),
    Weeks(u32),
    Months(u32),
    Years(u32),
}

impl Every {
    /// The width in seconds, calendar units counted as their usual length (a month 30 days, a year 365).
    pub fn approximate_secs(&self) -> u64 {
        const DAY: u64 = 86_400;
        match *self {
            Every::Fixed(ns) => u64::try_from(ns / 1_000_000_000).unwrap_or(0),
            Every::Days(n) => u64::from(n) * DAY,
            Every::Weeks(n) => u64::from(n) * 7 * DAY,
            Every::Months(n) => u64::from(n) * 30 * DAY,
            Every::Years(n) => u64::from(n) * 365 * DAY,
        }
    }
}

impl fmt::Display for Every {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Every::Fixed(ns) if ns % (3600 * NANOS_PER_SEC) == 0 => {
                write!(f, "{}h", ns / (3600 * NANOS_PER_SEC))
            }
            Every::Fixed(ns) if ns % (60 * NANOS_PER_SEC) == 0 => {
                write!(f, "{}m", ns / (60 * NANOS_PER_SEC))
            }
            Every::Fixed(ns) => write!(f, "{}s", ns / NANOS_PER_SEC),
            Every::Days(n) => write!(f, "{n}d"),
            Every::Weeks(n) => write!(f, "{n}w"),
            Every::Months(n) => write!(f, "{n}mo"),
            Every::Years(n) => write!(f, "{n}y"),
        }
    }
}
