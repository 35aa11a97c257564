//! Bucket boundaries: fixed widths aligned to the local clock, calendar widths at local midnight.
use super::Every;
use crate::{Error, Result};
use bydata_schemas::UnixNanos;
use chrono::{Datelike, Days, Duration, Months, NaiveDate, Offset, TimeZone};
use chrono_tz::Tz;

/// At most this many buckets per query, so one request cannot allocate without bound.
pub const MAX_BUCKETS: usize = 100_000;

/// Bucket boundaries covering `[from, to)`: bucket `i` is `[b[i], b[i+1])`; the first starts at or before
/// `from`.
pub fn bucket_bounds(
    from: UnixNanos,
    to: UnixNanos,
    every: Every,
    tz: Tz,
) -> Result<Vec<UnixNanos>> {
    if from >= to {
        return Err(Error::InvalidQuery {
            reason: "from must be before to".into(),
        });
    }
    let too_many = || Error::InvalidQuery {
        reason: format!(
            "the range holds more than {MAX_BUCKETS} buckets of {every}: choose a wider bucket or a shorter range"
        ),
    };
    let mut bounds = Vec::new();
    match every {
        Every::Fixed(width) => {
            // Aligned to the local clock of the query's time zone (its UTC offset at `from`): hours start at
            // :00 local in Asia/Kolkata (+05:30) too, and days at local midnight. For whole-hour offsets such as
            // Copenhagen's this is the same as aligning to the epoch.
            let offset = i64::from(
                tz.offset_from_utc_datetime(&tz.timestamp_nanos(from).naive_utc())
                    .fix()
                    .local_minus_utc(),
            ) * 1_000_000_000;
            // from - rem_euclid cannot overflow where from.div_euclid(width) * width could (near i64::MIN).
            let mut t = from
                .checked_sub(from.saturating_add(offset).rem_euclid(width))
                .ok_or_else(too_many)?;
            loop {
                bounds.push(t);
                if t >= to {
                    break;
                }
                if bounds.len() > MAX_BUCKETS {
                    return Err(too_many());
                }
                t = t.checked_add(width).ok_or_else(too_many)?;
            }
        }
        calendar => {
            let out_of_range = || Error::InvalidQuery {
                reason: "calendar buckets need times between 1678 and 2261".into(),
            };
            let local = tz.timestamp_nanos(from).date_naive();
            let mut date = match calendar {
                Every::Days(_) => Some(local),
                Every::Weeks(_) => local
                    .checked_sub_days(Days::new(u64::from(local.weekday().num_days_from_monday()))),
                Every::Months(_) => local.with_day(1),
                _ => NaiveDate::from_ymd_opt(local.year(), 1, 1),
            }
            .ok_or_else(out_of_range)?;
            loop {
                let t = local_midnight(tz, date).ok_or_else(out_of_range)?;
                if bounds.last().is_some_and(|last| *last >= t) || (bounds.is_empty() && t > from) {
                    return Err(out_of_range());
                }
                bounds.push(t);
                if t >= to {
                    break;
                }
                if bounds.len() > MAX_BUCKETS {
                    return Err(too_many());
                }
                date = match calendar {
                    Every::Days(n) => date.checked_add_days(Days::new(u64::from(n))),
                    Every::Weeks(n) => date.checked_add_days(Days::new(u64::from(n) * 7)),
                    Every::Months(n) => date.checked_add_months(Months::new(n)),
                    Every::Years(n) => n
                        .checked_mul(12)
                        .and_then(|m| date.checked_add_months(Months::new(m))),
                    Every::Fixed(_) => unreachable!("handled above"),
                }
                .ok_or_else(too_many)?;
            }
        }
    }
    Ok(bounds)
}

/// The instant local midnight begins on `date` in `tz` (the earliest instant of that local day, also where a
/// zone skips midnight itself); `None` outside the nanosecond range.
fn local_midnight(tz: Tz, date: NaiveDate) -> Option<UnixNanos> {
    let mut t = date.and_hms_opt(0, 0, 0)?;
    for _ in 0..4 {
        if let Some(dt) = tz.from_local_datetime(&t).earliest() {
            return dt.timestamp_nanos_opt();
        }
        t = t.checked_add_signed(Duration::minutes(30))?;
    }
    None
}
