//! A published period: a local month (`2026-03`) or year (`2026`), its label, its bounds and the next one;
//! and how times are written in published files (RFC 3339 in the dataset's zone).
use crate::error::{Error, Result};
use bydata_schemas::UnixNanos;
use chrono::{Datelike, SecondsFormat, TimeZone};
use chrono_tz::Tz;

/// The zone of buckets and periods when a definition names none.
pub(crate) const DEFAULT_TZ: Tz = chrono_tz::Europe::Copenhagen;

/// `t` as RFC 3339 with the zone's offset (as the query API writes times).
pub(crate) fn time_in(tz: Tz, t: UnixNanos) -> String {
    tz.timestamp_nanos(t)
        .to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// A month (`2026-03`) or a year (`2026`) in the dataset's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Period {
    year: i32,
    month: Option<u32>,
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.month {
            Some(m) => write!(f, "{:04}-{m:02}", self.year),
            None => write!(f, "{:04}", self.year),
        }
    }
}

impl Period {
    pub(crate) fn containing(t: UnixNanos, tz: Tz, yearly: bool) -> Period {
        let local = tz.timestamp_nanos(t);
        Period {
            year: local.year(),
            month: (!yearly).then(|| local.month()),
        }
    }

    pub(crate) fn parse(s: &str, yearly: bool) -> Option<Period> {
        let year = |y: &str| {
            (y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()))
                .then(|| y.parse::<i32>().ok())
                .flatten()
                .filter(|y| (2000..=9998).contains(y))
        };
        if yearly {
            return Some(Period {
                year: year(s)?,
                month: None,
            });
        }
        let (y, m) = s.split_once('-')?;
        let month = (m.len() == 2)
            .then(|| m.parse::<u32>().ok())
            .flatten()
            .filter(|m| (1..=12).contains(m))?;
        Some(Period {
            year: year(y)?,
            month: Some(month),
        })
    }

    pub(crate) fn next(self) -> Period {
        match self.month {
            Some(12) => Period {
                year: self.year + 1,
                month: Some(1),
            },
            Some(m) => Period {
                year: self.year,
                month: Some(m + 1),
            },
            None => Period {
                year: self.year + 1,
                month: None,
            },
        }
    }

    pub(crate) fn start(self, tz: Tz) -> Result<UnixNanos> {
        tz.with_ymd_and_hms(self.year, self.month.unwrap_or(1), 1, 0, 0, 0)
            .earliest()
            .and_then(|t| t.timestamp_nanos_opt())
            .ok_or_else(|| Error::period(format!("{self}: no such local time")))
    }

    pub(crate) fn end(self, tz: Tz) -> Result<UnixNanos> {
        self.next().start(tz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cph() -> Tz {
        DEFAULT_TZ
    }

    #[test]
    fn periods_are_local_months_or_years() {
        let march = Period::parse("2026-03", false).expect("month");
        assert_eq!(march.to_string(), "2026-03");
        let start = march.start(cph()).expect("start");
        let end = march.end(cph()).expect("end");
        assert_eq!(time_in(cph(), start), "2026-03-01T00:00:00+01:00");
        assert_eq!(time_in(cph(), end), "2026-04-01T00:00:00+02:00");
        // 31 days less the hour lost on 29 March.
        assert_eq!((end - start) / 3_600_000_000_000, 743);
        let december = Period::parse("2026-12", false).expect("month");
        assert_eq!(december.next().to_string(), "2027-01");
        assert_eq!(
            Period::parse("2026", true)
                .expect("year")
                .next()
                .to_string(),
            "2027"
        );
        for bad in [
            "2026-3",
            "2026-13",
            "2026-00",
            "26-03",
            "2026-03-01",
            "1999-01",
            "+026-03",
            "",
        ] {
            assert_eq!(Period::parse(bad, false), None, "{bad}");
        }
        assert_eq!(Period::parse("2026-03", true), None);
    }

    proptest! {
        /// A period in a request is outside input: any text parses or is refused, and what parses prints back.
        #[test]
        fn any_period_text_parses_or_is_refused(s in "\\PC{0,12}", yearly: bool) {
            if let Some(p) = Period::parse(&s, yearly) {
                prop_assert_eq!(p.to_string(), s.clone());
                prop_assert!(p.start(cph()).is_ok());
                prop_assert!(p.end(cph()).expect("end") > p.start(cph()).expect("start"));
            }
        }

        #[test]
        fn well_formed_months_round_trip(y in 2000i32..9998, m in 1u32..=12) {
            let s = format!("{y:04}-{m:02}");
            prop_assert_eq!(Period::parse(&s, false).map(|p| p.to_string()), Some(s));
        }
    }
}
