//! Energinet's Energi Data Service: the datasets `CO2Emis` (measured) and `CO2EmisProg` (prognosis), g CO2e per
//! kWh of consumed electricity for each 5-minute interval and price area.
//!
//! Wire format (<https://www.energidataservice.dk/guides/api-guides>, the datasets' pages
//! <https://www.energidataservice.dk/tso-electricity/CO2Emis>): `GET {base}/dataset/{name}?start=…&end=…&filter=
//! {"PriceArea":[…]}&sort=…&offset=…&limit=…`, `start` included, `end` excluded, both in Danish local time
//! (`yyyy-MM-ddTHH:mm`), answered with `{"total","limit","dataset","records":[{"Minutes5UTC","Minutes5DK",
//! "PriceArea","CO2Emission"}]}` where `Minutes5UTC` is the interval's start in UTC without an offset
//! (`2026-01-20T16:30:00`) and `CO2Emission` a number, or null where Energinet has none.
use crate::error::{Error, Result};
use bydata_schemas::UnixNanos;
use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Europe::Copenhagen;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub(crate) const SERVICE: &str = "Energi Data Service";
/// Five minutes, the datasets' resolution.
pub const INTERVAL: UnixNanos = 300_000_000_000;
/// No grid emits more than this per kWh (lignite is ~1 100 g): a larger value is a broken record.
const MAX_G_PER_KWH: f64 = 5_000.0;

/// Which of Energinet's emission datasets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dataset {
    /// Measured: the emission of the electricity consumed, per 5 minutes, published shortly after.
    CO2Emis,
    /// Prognosis: the same quantity forecast for the coming day, revised during the day.
    CO2EmisProg,
}

impl Dataset {
    /// The dataset's name in the API, also the `source` tag bydata writes.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::CO2Emis => "CO2Emis",
            Dataset::CO2EmisProg => "CO2EmisProg",
        }
    }
}

/// One 5-minute emission factor.
#[derive(Debug, Clone, PartialEq)]
pub struct Factor {
    /// The interval's start (UTC).
    pub time: UnixNanos,
    pub area: String,
    pub g_per_kwh: f64,
}

/// One page of a dataset, with what could not be used.
#[derive(Debug, Default, PartialEq)]
pub struct Page {
    /// Records matching the request, over all pages (the API's `total`).
    pub total: u64,
    /// Records on this page.
    pub records: usize,
    pub factors: Vec<Factor>,
    /// Why each refused record was refused (record index and reason).
    pub refused: Vec<String>,
    /// Records without a value (`CO2Emission` null): not an error, nothing to store.
    pub empty: u64,
}

/// Parses one answer. A record that is not usable is refused with its reason and the others are kept; an answer
/// that is not the documented shape at all is an error. Records of areas not in `areas` are skipped.
pub fn parse_page(body: &[u8], areas: &[String]) -> Result<Page> {
    let shape = |what: &str| Error::Shape {
        service: SERVICE,
        what: what.to_owned(),
    };
    let doc: Value = serde_json::from_slice(body).map_err(|_| shape("not JSON"))?;
    let records = doc
        .get("records")
        .and_then(Value::as_array)
        .ok_or_else(|| shape("no `records` array"))?;
    let mut page = Page {
        total: doc
            .get("total")
            .and_then(Value::as_u64)
            .unwrap_or(records.len() as u64),
        records: records.len(),
        ..Page::default()
    };
    for (i, r) in records.iter().enumerate() {
        let area = match r.get("PriceArea").and_then(Value::as_str) {
            Some(a) => a,
            None => {
                page.refused.push(format!("record {i}: no `PriceArea`"));
                continue;
            }
        };
        if !areas.iter().any(|a| a == area) {
            continue;
        }
        let Some(time) = r.get("Minutes5UTC").and_then(Value::as_str) else {
            page.refused.push(format!("record {i}: no `Minutes5UTC`"));
            continue;
        };
        let Some(time) = parse_utc(time) else {
            page.refused.push(format!(
                "record {i}: `Minutes5UTC` {time:?} is not a time like 2026-01-20T16:30:00"
            ));
            continue;
        };
        match r.get("CO2Emission") {
            None | Some(Value::Null) => page.empty += 1,
            Some(v) => match v.as_f64() {
                Some(g) if g.is_finite() && (0.0..=MAX_G_PER_KWH).contains(&g) => {
                    page.factors.push(Factor {
                        time,
                        area: area.to_owned(),
                        g_per_kwh: g,
                    });
                }
                _ => page.refused.push(format!(
                    "record {i}: `CO2Emission` {v} is not a number of g/kWh from 0 to {MAX_G_PER_KWH}"
                )),
            },
        }
    }
    Ok(page)
}

/// `2026-01-20T16:30:00` (the documented form), also with seconds' fractions or a trailing `Z`.
fn parse_utc(s: &str) -> Option<UnixNanos> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let t = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .ok()?;
    t.and_utc().timestamp_nanos_opt()
}

/// The API's `start`/`end` form: Danish local time to the minute.
pub(crate) fn danish_minute(t: UnixNanos) -> String {
    DateTime::<Utc>::from_timestamp_nanos(t)
        .with_timezone(&Copenhagen)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

/// Fetches every factor of `dataset` for `areas` with `from <= time < to`, page by page.
pub(crate) async fn fetch(
    client: &reqwest::Client,
    base_url: &str,
    dataset: Dataset,
    areas: &[String],
    (from, to): (UnixNanos, UnixNanos),
    page_size: usize,
) -> Result<Page> {
    const HOUR: UnixNanos = 3_600_000_000_000;
    let url = format!(
        "{}/dataset/{}",
        base_url.trim_end_matches('/'),
        dataset.name()
    );
    let filter = serde_json::json!({ "PriceArea": areas }).to_string();
    // Local times are ambiguous in the hour the clocks go back: ask an hour wider on each side and keep
    // exactly [from, to) by the records' UTC times.
    let (start, end) = (danish_minute(from - HOUR), danish_minute(to + HOUR));
    let mut all = Page::default();
    let mut offset = 0usize;
    loop {
        let query = [
            ("start", start.clone()),
            ("end", end.clone()),
            ("filter", filter.clone()),
            ("sort", "Minutes5UTC ASC".to_owned()),
            ("offset", offset.to_string()),
            ("limit", page_size.to_string()),
        ];
        let body = crate::http::get_json(client, SERVICE, &url, &query, None).await?;
        let page = parse_page(&body, areas)?;
        all.total = page.total;
        all.records += page.records;
        all.empty += page.empty;
        all.refused.extend(page.refused);
        all.factors.extend(
            page.factors
                .into_iter()
                .filter(|f| from <= f.time && f.time < to),
        );
        offset += page.records;
        if page.records < page_size || offset as u64 >= page.total || page.records == 0 {
            return Ok(all);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn areas() -> Vec<String> {
        vec!["DK1".to_owned(), "DK2".to_owned()]
    }

    #[test]
    fn the_documented_record_reads_as_its_utc_start_area_and_value() {
        // The record shape of the dataset page (Minutes5UTC without offset, CO2Emission a number).
        let body = br#"{"total":1903306,"limit":2,"dataset":"CO2Emis","records":[
            {"Minutes5UTC":"2026-01-20T16:30:00","Minutes5DK":"2026-01-20T17:30:00","PriceArea":"DK1","CO2Emission":160.000000},
            {"Minutes5UTC":"2026-01-20T16:30:00","Minutes5DK":"2026-01-20T17:30:00","PriceArea":"DE","CO2Emission":400.0},
            {"Minutes5UTC":"2026-01-20T16:35:00","Minutes5DK":"2026-01-20T17:35:00","PriceArea":"DK2","CO2Emission":null}]}"#;
        let page = parse_page(body, &areas()).expect("parses");
        assert_eq!(page.total, 1903306);
        assert_eq!(page.records, 3);
        assert_eq!(
            page.factors,
            vec![Factor {
                time: 1_768_926_600_000_000_000,
                area: "DK1".into(),
                g_per_kwh: 160.0
            }]
        );
        assert_eq!(page.empty, 1);
        assert!(page.refused.is_empty());
    }

    #[test]
    fn a_broken_record_is_refused_by_name_and_the_rest_kept() {
        let body = br#"{"total":3,"records":[
            {"Minutes5UTC":"yesterday","PriceArea":"DK1","CO2Emission":1},
            {"Minutes5UTC":"2026-01-20T16:30:00","PriceArea":"DK1","CO2Emission":-4},
            {"Minutes5UTC":"2026-01-20T16:35:00","PriceArea":"DK1","CO2Emission":"12"},
            {"Minutes5UTC":"2026-01-20T16:40:00","PriceArea":"DK1","CO2Emission":12.5}]}"#;
        let page = parse_page(body, &areas()).expect("parses");
        assert_eq!(page.factors.len(), 1);
        assert_eq!(page.refused.len(), 3, "{:?}", page.refused);
        assert!(page.refused[0].contains("Minutes5UTC"));
        assert!(page.refused[1].contains("CO2Emission"));
    }

    #[test]
    fn an_answer_without_records_is_an_error_naming_it() {
        for body in [&b"<html>"[..], br#"{"error":"x"}"#] {
            let e = parse_page(body, &areas()).expect_err("refused");
            assert!(e.to_string().contains("Energi Data Service"), "{e}");
        }
    }

    #[test]
    fn start_and_end_are_danish_local_time() {
        // 2026-07-01T10:00Z is 12:00 in summer; 2026-01-01T10:00Z is 11:00 in winter.
        assert_eq!(danish_minute(1_782_900_000_000_000_000), "2026-07-01T12:00");
        assert_eq!(danish_minute(1_767_261_600_000_000_000), "2026-01-01T11:00");
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_page(&body, &areas());
        }

        #[test]
        fn never_panics_on_arbitrary_records(
            time in ".{0,30}", area in "DK[12]|..", value in proptest::num::f64::ANY, null in any::<bool>()
        ) {
            let v = if null { Value::Null } else { serde_json::json!(value) };
            let body = serde_json::json!({"records": [{"Minutes5UTC": time, "PriceArea": area, "CO2Emission": v}]});
            let page = parse_page(body.to_string().as_bytes(), &areas()).expect("shape is right");
            prop_assert_eq!(page.factors.len() + page.refused.len() + page.empty as usize
                + usize::from(area != "DK1" && area != "DK2"), 1);
        }
    }
}
