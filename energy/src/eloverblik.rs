//! Eloverblik (Energinet's DataHub): hourly consumption of metering points, through the customer API (a
//! municipality's own meters) or the third-party API (meters a customer has authorised you for). Both share
//! the token exchange and the time-series shape; only the path prefix differs.
//!
//! Wire format, from Energinet's OpenAPI documents of both APIs (`api.eloverblik.dk/customerapi/swagger`,
//! `…/thirdpartyapi/swagger`) and "Customer and Third party API for Datahub Eloverblik — Technical description":
//! - `GET {base}/{customerapi|thirdpartyapi}/api/token` with `Authorization: Bearer <refresh token>` →
//!   `{"result":"<data access token>"}` (valid 24 hours);
//! - `POST {base}/…/api/meterdata/gettimeseries/{dateFrom}/{dateTo}/Hour` (dates `YYYY-MM-DD`) with
//!   `{"meteringPoints":{"meteringPoint":["571313…"]}}` and the access token →
//!   `{"result":[{"MyEnergyData_MarketDocument":{…,"TimeSeries":[{"mRID":"571313…","Period":[{"resolution":
//!   "PT1H","timeInterval":{"start":"2018-12-31T23:00:00Z","end":"2019-01-01T23:00:00Z"},"Point":[{"position":
//!   "1","out_Quantity.quantity":"1.0","out_Quantity.quality":"A04"}]}]}]},"success":true,"errorCode":…,
//!   "errorText":…,"id":"571313…"}]}`.
//!
//! Periods are in UTC and a point's `position` counts the hours from its period's start, from 1: a Danish day
//! has 23, 24 or 25 of them, and the times follow without any daylight-saving arithmetic. Quality `A02` (not
//! available) has no quantity.
use crate::error::{Error, Result};
use bydata_schemas::UnixNanos;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

pub(crate) const SERVICE: &str = "Eloverblik";
const HOUR: UnixNanos = 3_600_000_000_000;
/// A data access token lives 24 hours; a new one is asked for well before.
const TOKEN_LIFE: Duration = Duration::from_secs(20 * 3600);
/// A metering point's consumption in one hour beyond this (kWh) is a broken value, not a building.
const MAX_KWH: f64 = 1.0e7;

/// Which of the two APIs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// `customerapi`: the meters of the token's owner (a municipality's own CVR).
    #[default]
    Customer,
    /// `thirdpartyapi`: meters whose owners authorised the token's owner.
    Thirdparty,
}

impl Api {
    fn prefix(self) -> &'static str {
        match self {
            Api::Customer => "customerapi",
            Api::Thirdparty => "thirdpartyapi",
        }
    }
}

/// One hour's consumption.
#[derive(Debug, Clone, PartialEq)]
pub struct Hourly {
    /// The hour's start (UTC).
    pub time: UnixNanos,
    pub kwh: f64,
}

/// What an answer holds for one metering point.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MeterData {
    pub metering_point: String,
    pub hours: Vec<Hourly>,
    /// Hours DataHub marks as not available (quality `A02`, or no quantity).
    pub missing: u64,
    /// Points that could not be used, each with why.
    pub refused: Vec<String>,
    /// DataHub's refusal of the whole metering point (`success: false`), in its words.
    pub error: Option<String>,
}

/// Parses a token answer: `{"result": "<token>"}`.
pub fn parse_token(body: &[u8]) -> Result<String> {
    let doc: Value = serde_json::from_slice(body).map_err(|_| Error::Shape {
        service: SERVICE,
        what: "the token answer is not JSON".to_owned(),
    })?;
    match doc.get("result").and_then(Value::as_str) {
        Some(t) if !t.is_empty() => Ok(t.to_owned()),
        _ => Err(Error::Shape {
            service: SERVICE,
            what: "the token answer has no `result` string".to_owned(),
        }),
    }
}

/// Parses a `gettimeseries` answer into hourly values per metering point. Points that cannot be used are
/// refused with their reason and the others kept; an answer that is not the documented shape is an error.
pub fn parse_time_series(body: &[u8]) -> Result<Vec<MeterData>> {
    let shape = |what: &str| Error::Shape {
        service: SERVICE,
        what: what.to_owned(),
    };
    let doc: Value = serde_json::from_slice(body).map_err(|_| shape("not JSON"))?;
    let results = doc
        .get("result")
        .and_then(Value::as_array)
        .ok_or_else(|| shape("no `result` array"))?;
    let mut out = Vec::new();
    for item in results {
        let id = item.get("id").and_then(Value::as_str).unwrap_or_default();
        if item.get("success").and_then(Value::as_bool) == Some(false) {
            let code = item
                .get("errorCode")
                .map(Value::to_string)
                .unwrap_or_default();
            let text = item.get("errorText").and_then(Value::as_str).unwrap_or("");
            out.push(MeterData {
                metering_point: id.to_owned(),
                error: Some(format!("error {code}: {text}")),
                ..MeterData::default()
            });
            continue;
        }
        let series = item
            .pointer("/MyEnergyData_MarketDocument/TimeSeries")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if series.is_empty() {
            // A successful answer without a series: no data for the period yet.
            out.push(MeterData {
                metering_point: id.to_owned(),
                ..MeterData::default()
            });
        }
        for ts in series {
            let mp = ts
                .get("mRID")
                .and_then(Value::as_str)
                .filter(|m| !m.is_empty())
                .unwrap_or(id);
            let mut data = MeterData {
                metering_point: mp.to_owned(),
                ..MeterData::default()
            };
            let periods = ts.get("Period").and_then(Value::as_array);
            for (p, period) in periods.into_iter().flatten().enumerate() {
                period_hours(p, period, &mut data);
            }
            out.push(data);
        }
    }
    Ok(out)
}

fn period_hours(p: usize, period: &Value, data: &mut MeterData) {
    let resolution = period
        .get("resolution")
        .and_then(Value::as_str)
        .unwrap_or("");
    let points = period
        .get("Point")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if resolution != "PT1H" {
        data.refused.push(format!(
            "period {p}: resolution {resolution:?}; bydata imports hourly values (PT1H), {} points skipped",
            points.len()
        ));
        return;
    }
    let bound = |k: &str| {
        period
            .pointer(&format!("/timeInterval/{k}"))
            .and_then(Value::as_str)
            .and_then(|s| bydata_schemas::parse_rfc3339(s).ok())
    };
    let (Some(start), Some(end)) = (bound("start"), bound("end")) else {
        data.refused.push(format!(
            "period {p}: `timeInterval` has no UTC start and end like 2019-01-01T23:00:00Z, {} points skipped",
            points.len()
        ));
        return;
    };
    for point in points {
        let position = match point.get("position") {
            Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
            Some(Value::Number(n)) => n.as_i64(),
            _ => None,
        };
        let time = position
            .filter(|p| *p >= 1)
            .and_then(|p| (p - 1).checked_mul(HOUR))
            .and_then(|offset| start.checked_add(offset))
            .filter(|t| *t < end);
        let Some(time) = time else {
            data.refused.push(format!(
                "period {p}: position {} is not an hour within {}",
                point.get("position").unwrap_or(&Value::Null),
                period.get("timeInterval").unwrap_or(&Value::Null)
            ));
            continue;
        };
        let quality = point.get("out_Quantity.quality").and_then(Value::as_str);
        let quantity = match point.get("out_Quantity.quantity") {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().parse::<f64>().ok()),
            Some(Value::Number(n)) => Some(n.as_f64()),
            _ => None,
        };
        match (quality, quantity) {
            (Some("A02"), _) | (_, None) => data.missing += 1,
            (_, Some(Some(kwh))) if kwh.is_finite() && kwh.abs() <= MAX_KWH => {
                data.hours.push(Hourly { time, kwh });
            }
            (_, Some(_)) => data.refused.push(format!(
                "period {p}: the quantity at position {} is not a number of kWh",
                point.get("position").unwrap_or(&Value::Null)
            )),
        }
    }
}

/// The refresh token (from the token file or `BYDATA_ELOVERBLIK_TOKEN`): never printed.
#[derive(Clone)]
pub struct RefreshToken(pub String);

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshToken(…)")
    }
}

/// A client of one Eloverblik API, keeping its data access token between calls.
#[derive(Debug)]
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    refresh: RefreshToken,
    access: Mutex<Option<(String, Instant)>>,
}

impl Client {
    pub(crate) fn new(http: reqwest::Client, url: &str, api: Api, refresh: RefreshToken) -> Self {
        Self {
            http,
            base: format!("{}/{}", url.trim_end_matches('/'), api.prefix()),
            refresh,
            access: Mutex::new(None),
        }
    }

    async fn access_token(&self, renew: bool) -> Result<String> {
        let mut access = self.access.lock().await;
        if let Some((token, at)) = access.as_ref()
            && !renew
            && at.elapsed() < TOKEN_LIFE
        {
            return Ok(token.clone());
        }
        let url = format!("{}/api/token", self.base);
        let body =
            crate::http::get_json(&self.http, SERVICE, &url, &[], Some(&self.refresh.0)).await?;
        let token = parse_token(&body)?;
        *access = Some((token.clone(), Instant::now()));
        Ok(token)
    }

    /// Hourly values of `metering_point` for the Danish dates `from` (included) to `to` (excluded).
    pub(crate) async fn time_series(
        &self,
        metering_point: &str,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<Vec<MeterData>> {
        let url = format!(
            "{}/api/meterdata/gettimeseries/{}/{}/Hour",
            self.base,
            from.format("%Y-%m-%d"),
            to.format("%Y-%m-%d")
        );
        let body = serde_json::json!({ "meteringPoints": { "meteringPoint": [metering_point] } });
        let token = self.access_token(false).await?;
        let answer = match crate::http::post_json(&self.http, SERVICE, &url, &body, &token).await {
            // The access token expired early (or was revoked): one new one, one more try.
            Err(Error::Status { status: 401, .. }) => {
                let token = self.access_token(true).await?;
                crate::http::post_json(&self.http, SERVICE, &url, &body, &token).await?
            }
            other => other?,
        };
        parse_time_series(&answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A day of the documented shape: the Danish day 2026-10-25 (clocks back at 03:00 CEST), 25 hours from
    /// 2026-10-24T22:00:00Z to 2026-10-25T23:00:00Z.
    fn autumn_day() -> Value {
        let points: Vec<Value> = (1..=25)
            .map(|p| {
                serde_json::json!({"position": p.to_string(), "out_Quantity.quantity": format!("{p}.000"),
                    "out_Quantity.quality": if p == 3 { "A02" } else { "A04" }})
            })
            .collect();
        serde_json::json!({"result": [{"MyEnergyData_MarketDocument": {"mRID": "x", "TimeSeries": [{
            "mRID": "571313000000000001", "businessType": "A04", "measurement_Unit.name": "KWH",
            "Period": [{"resolution": "PT1H", "timeInterval": {"start": "2026-10-24T22:00:00Z",
                "end": "2026-10-25T23:00:00Z"}, "Point": points}]}]},
            "success": true, "errorCode": 10000, "errorText": "NoError", "id": "571313000000000001"}]})
    }

    #[test]
    fn positions_count_utc_hours_from_the_period_start_through_a_25_hour_day() {
        let data = parse_time_series(autumn_day().to_string().as_bytes()).expect("parses");
        assert_eq!(data.len(), 1);
        let d = &data[0];
        assert_eq!(d.metering_point, "571313000000000001");
        assert_eq!(d.hours.len(), 24);
        assert_eq!(d.missing, 1, "position 3 is A02");
        let start = bydata_schemas::parse_rfc3339("2026-10-24T22:00:00Z").expect("time");
        assert_eq!(
            d.hours[0],
            Hourly {
                time: start,
                kwh: 1.0
            }
        );
        // Position 25 is the hour from 22:00Z: the last of the Danish day, 23:00 local time.
        let last = d.hours.last().expect("last");
        assert_eq!(last.time, start + 24 * HOUR);
        assert_eq!(last.kwh, 25.0);
    }

    #[test]
    fn a_refused_metering_point_carries_datahubs_words_and_others_are_kept() {
        let mut doc = autumn_day();
        doc["result"].as_array_mut().expect("array").push(serde_json::json!({
            "success": false, "errorCode": 20000, "errorText": "NoCprConsent", "id": "571313000000000002"}));
        let data = parse_time_series(doc.to_string().as_bytes()).expect("parses");
        assert_eq!(data.len(), 2);
        assert_eq!(data[1].metering_point, "571313000000000002");
        assert_eq!(data[1].error.as_deref(), Some("error 20000: NoCprConsent"));
    }

    #[test]
    fn a_point_outside_its_period_or_not_a_number_is_refused_by_position() {
        let doc = serde_json::json!({"result": [{"success": true, "id": "m", "MyEnergyData_MarketDocument": {
            "TimeSeries": [{"mRID": "m", "Period": [{"resolution": "PT1H",
                "timeInterval": {"start": "2026-01-01T23:00:00Z", "end": "2026-01-02T01:00:00Z"},
                "Point": [{"position": "1", "out_Quantity.quantity": "0.5", "out_Quantity.quality": "A04"},
                          {"position": "3", "out_Quantity.quantity": "0.5", "out_Quantity.quality": "A04"},
                          {"position": "0", "out_Quantity.quantity": "0.5"},
                          {"position": "2", "out_Quantity.quantity": "lots", "out_Quantity.quality": "A03"}]},
                {"resolution": "PT15M", "timeInterval": {}, "Point": [{}]}]}]}}]});
        let data = parse_time_series(doc.to_string().as_bytes()).expect("parses");
        assert_eq!(data[0].hours.len(), 1);
        assert_eq!(data[0].refused.len(), 4, "{:?}", data[0].refused);
        assert!(data[0].refused[3].contains("PT15M"));
    }

    #[test]
    fn the_token_answer_is_its_result_string() {
        assert_eq!(
            parse_token(br#"{"result":"eyJ.a.b"}"#).expect("token"),
            "eyJ.a.b"
        );
        assert!(parse_token(br#"{"result":null}"#).is_err());
        assert!(parse_token(b"<html>").is_err());
    }

    #[test]
    fn the_refresh_token_never_prints() {
        assert_eq!(
            format!("{:?}", RefreshToken("secret".into())),
            "RefreshToken(…)"
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_time_series(&body);
            let _ = parse_token(&body);
        }

        #[test]
        fn never_panics_on_arbitrary_points(
            position in prop_oneof![any::<i64>().prop_map(|p| serde_json::json!(p)),
                ".{0,12}".prop_map(|p| serde_json::json!(p))],
            quantity in ".{0,12}", quality in "A0[1-5]|.{0,3}", start in ".{0,25}",
        ) {
            let doc = serde_json::json!({"result": [{"MyEnergyData_MarketDocument": {"TimeSeries": [{"Period": [{
                "resolution": "PT1H", "timeInterval": {"start": start, "end": "2026-01-02T00:00:00Z"},
                "Point": [{"position": position, "out_Quantity.quantity": quantity, "out_Quantity.quality": quality}]}]}]}}]});
            let data = parse_time_series(doc.to_string().as_bytes()).expect("shape is right");
            let d = &data[0];
            prop_assert!(d.hours.len() + d.missing as usize + d.refused.len() == 1);
        }
    }
}
