//! SenML JSON (RFC 8428): a pack is an array of records, resolved in order (§4.6).
//!
//! - **Base fields** `bn`, `bt`, `bu`, `bv`, `bs`, `bver` apply to their own record and every later one until
//!   changed (§4.1). A record with only base fields yields no reading.
//! - **Value**: `v` (+ `bv`), `vb` (true = 1, false = 0) or `s`, the sum (+ `bs`) — a sum is stored as the
//!   measurement's value, since bydata stores cumulative counters (energy, water) as plain values; a record
//!   with both a value and a sum is refused, as it would need two series under one name. A string value (`vs`)
//!   is text, kept as the device's latest state under the record's name; a data value (`vd`) is skipped and
//!   named in a warning.
//! - **Name**: `bn` + `n`. If that is not a valid measurement name, only the part after the last `:` or `/`
//!   is kept (`urn:dev:ow:10e2073a01080063:temp` → `temp`, `/3303/0/5700` → `5700`); the device is already
//!   identified by its authenticated id, so the URN prefix adds nothing. If that part is still invalid the
//!   message is rejected. Names that collide this way at the same time are caught as duplicates.
//! - **Unit**: `u`, else `bu`, else [`Unit::for_measurement`] of the name.
//! - **Time** (§4.5.3): `bt` + `t` seconds, fractions allowed; 2^28 or more is absolute (since the epoch),
//!   less is relative to the receive time (so no `t` and no `bt` is the receive time). `ut` is checked to be a
//!   number and otherwise ignored.
//! - Fields ending in `_` must be understood (§4.4) and none are, so they reject the message; other unknown
//!   fields are ignored. `bver` above 10 is a future SenML version and is refused.

use super::decoded::{Decoded, Sorter};
use super::json::json_type;
use super::{DecodeContext, DecodeError, JsonType, NANOS_PER_SEC, invalid_reason, numeric_time};
use bydata_schemas::{MeasurementName, Reading, Unit, UnixNanos};
use serde_json::{Map, Value};

/// Times below this many seconds are relative to now (RFC 8428 §4.5.3).
const RELATIVE_BELOW: f64 = (1u64 << 28) as f64;
/// The SenML version RFC 8428 defines.
const VERSION: f64 = 10.0;
const BASE_FIELDS: [&str; 6] = ["bn", "bt", "bu", "bv", "bs", "bver"];

/// Base values carried from record to record.
#[derive(Debug, Default)]
struct Base {
    name: String,
    time: f64,
    unit: Option<String>,
    value: f64,
    sum: f64,
}

/// A record's value.
enum Resolved {
    Number(f64),
    Text(String),
    Data,
}

pub(super) fn decode(value: Value, ctx: &DecodeContext) -> Result<Decoded, DecodeError> {
    let Value::Array(records) = value else {
        return Err(DecodeError::WrongType {
            expected: "a SenML pack (a JSON array of records)",
            found: json_type(&value),
        });
    };
    let mut base = Base::default();
    let mut sorter = Sorter::default();
    for (i, record) in records.iter().enumerate() {
        let Value::Object(fields) = record else {
            return Err(DecodeError::SenmlRecordType {
                record: i + 1,
                found: json_type(record),
            });
        };
        let record = Record {
            number: i + 1,
            fields,
        };
        record.resolve(&mut base, ctx, &mut sorter)?;
    }
    sorter.finish(ctx)
}

struct Record<'a> {
    /// Position in the pack, counting from 1.
    number: usize,
    fields: &'a Map<String, Value>,
}

impl Record<'_> {
    /// Updates `base` from this record, then resolves its value into `sorter` (nothing for a base-only
    /// record).
    fn resolve(
        &self,
        base: &mut Base,
        ctx: &DecodeContext,
        sorter: &mut Sorter,
    ) -> Result<(), DecodeError> {
        let record = self.number;
        if let Some(field) = self.fields.keys().find(|k| k.ends_with('_')) {
            return Err(DecodeError::SenmlMustUnderstand {
                record,
                field: field.clone(),
            });
        }
        if let Some(version) = self.number_field("bver")?
            && version > VERSION
        {
            return Err(DecodeError::SenmlVersion { record, version });
        }
        if let Some(bn) = self.string_field("bn")? {
            bn.clone_into(&mut base.name);
        }
        if let Some(bt) = self.number_field("bt")? {
            base.time = bt;
        }
        if let Some(bu) = self.string_field("bu")? {
            base.unit = Some(bu.to_owned());
        }
        if let Some(bv) = self.number_field("bv")? {
            base.value = bv;
        }
        if let Some(bs) = self.number_field("bs")? {
            base.sum = bs;
        }
        self.number_field("ut")?;
        let text = self.string_field("vs")?;
        let data = self.string_field("vd")?;
        let (number, boolean) = (self.number_field("v")?, self.bool_field("vb")?);
        let sum = self.number_field("s")?;
        let given = [
            number.is_some(),
            boolean.is_some(),
            text.is_some(),
            data.is_some(),
        ]
        .into_iter()
        .filter(|g| *g)
        .count();
        if given > 1 {
            return Err(DecodeError::SenmlMultipleValues { record });
        }
        if given == 1 && sum.is_some() {
            return Err(DecodeError::SenmlValueAndSum { record });
        }
        let value = match (number, boolean, text, data, sum) {
            (Some(v), ..) => Resolved::Number(base.value + v),
            (_, Some(vb), ..) => Resolved::Number(f64::from(u8::from(vb))),
            (_, _, Some(text), ..) => Resolved::Text(text.to_owned()),
            (_, _, _, Some(_), _) => Resolved::Data,
            (_, _, _, _, Some(s)) => Resolved::Number(base.sum + s),
            (None, None, None, None, None) => {
                let base_only = !self.fields.is_empty()
                    && self
                        .fields
                        .keys()
                        .all(|k| BASE_FIELDS.contains(&k.as_str()));
                return if base_only {
                    Ok(())
                } else {
                    Err(DecodeError::SenmlNoValue { record })
                };
            }
        };

        let full_name = format!(
            "{}{}",
            base.name,
            self.string_field("n")?.unwrap_or_default()
        );
        if full_name.is_empty() {
            return Err(DecodeError::SenmlNoName { record });
        }
        let measurement =
            measurement_name(&full_name).map_err(|reason| DecodeError::SenmlName {
                record,
                name: full_name.clone(),
                reason,
            })?;
        let unit = match self.string_field("u")?.or(base.unit.as_deref()) {
            Some(u) => Some(Unit::new(u).map_err(|e| DecodeError::SenmlUnit {
                record,
                unit: u.to_owned(),
                reason: invalid_reason(&e),
            })?),
            None => Unit::for_measurement(measurement.as_str()),
        };
        let seconds = base.time + self.number_field("t")?.unwrap_or(0.0);
        let time = resolve_time(seconds, ctx.received_at)?;
        match value {
            Resolved::Number(value) => sorter.reading(Reading {
                measurement,
                unit,
                time,
                value,
            }),
            Resolved::Text(text) => sorter.text(measurement, &text, time),
            Resolved::Data => sorter.skip(
                format!("record {record} ({})", measurement.as_str()),
                "a data value (vd)",
            ),
        }
        Ok(())
    }

    fn field(&self, name: &'static str, expected: JsonType) -> Result<Option<&Value>, DecodeError> {
        match self.fields.get(name) {
            Some(value) if json_type(value) != expected => Err(DecodeError::SenmlFieldType {
                record: self.number,
                field: name,
                expected,
                found: json_type(value),
            }),
            other => Ok(other),
        }
    }

    fn number_field(&self, name: &'static str) -> Result<Option<f64>, DecodeError> {
        // Without serde_json's arbitrary_precision every number has an f64 form.
        Ok(self
            .field(name, JsonType::Number)?
            .map(|v| v.as_f64().unwrap_or(f64::NAN)))
    }

    fn string_field(&self, name: &'static str) -> Result<Option<&str>, DecodeError> {
        Ok(self.field(name, JsonType::String)?.and_then(Value::as_str))
    }

    fn bool_field(&self, name: &'static str) -> Result<Option<bool>, DecodeError> {
        Ok(self
            .field(name, JsonType::Boolean)?
            .and_then(Value::as_bool))
    }
}

/// The resolved SenML name as a measurement name: unchanged if valid, else the part after the last ':' or '/'.
fn measurement_name(full: &str) -> Result<MeasurementName, &'static str> {
    MeasurementName::new(full).or_else(|_| {
        let last = full.rsplit([':', '/']).next().unwrap_or(full);
        MeasurementName::new(last).map_err(|e| invalid_reason(&e))
    })
}

/// RFC 8428 §4.5.3: at or above 2^28 s the time is absolute, below it relative to now.
fn resolve_time(seconds: f64, received_at: UnixNanos) -> Result<UnixNanos, DecodeError> {
    let nanos = if seconds >= RELATIVE_BELOW {
        numeric_time(seconds, NANOS_PER_SEC)
    } else {
        numeric_time(seconds, NANOS_PER_SEC).and_then(|rel| received_at.checked_add(rel))
    };
    nanos.ok_or(DecodeError::TimeOutOfRange { seconds })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Row, ctx, rows};
    use super::*;
    use bydata_schemas::Codec;

    fn decode(payload: &str) -> Result<Vec<Row>, DecodeError> {
        rows(Codec::Senml, payload)
    }

    fn row(name: &str, unit: Option<&str>, time: UnixNanos, value: f64) -> Row {
        (name.to_owned(), unit.map(str::to_owned), time, value)
    }

    #[test]
    fn rfc8428_examples() {
        let now = ctx().received_at;
        let sec = NANOS_PER_SEC;
        // RFC 8428 §5.1.3's base time, 1.276020076001e9 s, to the microsecond.
        let bt = 1_276_020_076_001_000_000;
        let cases: &[(&str, &str, Vec<Row>)] = &[
            (
                "RFC 8428 §5.1.1, single datapoint",
                r#"[{"n":"urn:dev:ow:10e2073a01080063","u":"Cel","v":23.1}]"#,
                vec![row("10e2073a01080063", Some("Cel"), now, 23.1)],
            ),
            (
                "RFC 8428 §5.1.2, multiple datapoints",
                r#"[
                  {"bn":"urn:dev:ow:10e2073a01080063:","n":"voltage","u":"V","v":120.1},
                  {"n":"current","u":"A","v":1.2}
                ]"#,
                vec![
                    row("voltage", Some("V"), now, 120.1),
                    row("current", Some("A"), now, 1.2),
                ],
            ),
            (
                "RFC 8428 §5.1.3, multiple measurements (bt, bu, bver 5, relative t)",
                r#"[
                  {"bn":"urn:dev:ow:10e2073a0108006:","bt":1.276020076001e+09,
                   "bu":"A","bver":5,
                   "n":"voltage","u":"V","v":120.1},
                  {"n":"current","t":-5,"v":1.2},
                  {"n":"current","t":-4,"v":1.3},
                  {"n":"current","t":-3,"v":1.4},
                  {"n":"current","t":-2,"v":1.5},
                  {"n":"current","t":-1,"v":1.6},
                  {"n":"current","v":1.7}
                ]"#,
                vec![
                    row("voltage", Some("V"), bt, 120.1),
                    row("current", Some("A"), bt - 5 * sec, 1.2),
                    row("current", Some("A"), bt - 4 * sec, 1.3),
                    row("current", Some("A"), bt - 3 * sec, 1.4),
                    row("current", Some("A"), bt - 2 * sec, 1.5),
                    row("current", Some("A"), bt - sec, 1.6),
                    row("current", Some("A"), bt, 1.7),
                ],
            ),
            (
                "times relative to now (RFC 8428 §4.5.3), fractional, and a base-only first record",
                r#"[{"bn":"b7:"},{"n":"temperature","t":-60,"v":20},{"n":"temperature","t":-0.5,"v":21}]"#,
                vec![
                    row("temperature", Some("Cel"), now - 60 * sec, 20.0),
                    row("temperature", Some("Cel"), now - sec / 2, 21.0),
                ],
            ),
            (
                "bv and bs are added; vb is 1 or 0; s is stored as the value",
                r#"[{"bn":"m.","bv":100,"bs":1000,"n":"a","v":1},{"n":"b","vb":true},{"n":"c","vb":false},
                    {"n":"energy_kwh","s":5,"t":-1}]"#,
                vec![
                    row("m.a", None, now, 101.0),
                    row("m.b", None, now, 1.0),
                    row("m.c", None, now, 0.0),
                    row("m.energy_kwh", None, now - sec, 1005.0),
                ],
            ),
            (
                "LwM2M-style path names keep their last segment; unknown fields are ignored; ut is ignored",
                r#"[{"bn":"/3303/0/","n":"5700","v":21.5,"ut":60,"x-vendor":"y"}]"#,
                vec![row("5700", None, now, 21.5)],
            ),
            (
                "a valid name is kept whole; units default from the name",
                r#"[{"n":"co2","v":640},{"n":"temperature","t":-1,"v":21.5,"u":"K"}]"#,
                vec![
                    row("co2", Some("ppm"), now, 640.0),
                    row("temperature", Some("K"), now - sec, 21.5),
                ],
            ),
        ];
        for (source, payload, want) in cases {
            assert_eq!(&decode(payload).expect(source), want, "{source}");
        }
    }

    #[test]
    fn rejected() {
        let cases: &[(&str, DecodeError)] = &[
            (
                r#"[{"n":"a","v":1,"vs":"x"}]"#,
                DecodeError::SenmlMultipleValues { record: 1 },
            ),
            (
                r#"[{"n":"a","vs":"x","s":1}]"#,
                DecodeError::SenmlValueAndSum { record: 1 },
            ),
            (
                r#"[{"n":"nfc","vd":"aGkgCg"}]"#,
                DecodeError::NothingStored {
                    skipped: "record 1 (nfc) (a data value (vd))".into(),
                },
            ),
            (
                r#"[{"n":"a","vs":1}]"#,
                DecodeError::SenmlFieldType {
                    record: 1,
                    field: "vs",
                    expected: JsonType::String,
                    found: JsonType::Number,
                },
            ),
            (
                r#"[{"n":"a","v":1}, 3]"#,
                DecodeError::SenmlRecordType {
                    record: 2,
                    found: JsonType::Number,
                },
            ),
            (
                r#"[{"n":"a","v":"1"}]"#,
                DecodeError::SenmlFieldType {
                    record: 1,
                    field: "v",
                    expected: JsonType::Number,
                    found: JsonType::String,
                },
            ),
            (
                r#"[{"n":1,"v":1}]"#,
                DecodeError::SenmlFieldType {
                    record: 1,
                    field: "n",
                    expected: JsonType::String,
                    found: JsonType::Number,
                },
            ),
            (
                r#"[{"n":"a","vb":1}]"#,
                DecodeError::SenmlFieldType {
                    record: 1,
                    field: "vb",
                    expected: JsonType::Boolean,
                    found: JsonType::Number,
                },
            ),
            (
                r#"[{"n":"a","v":1,"vb":true}]"#,
                DecodeError::SenmlMultipleValues { record: 1 },
            ),
            (
                r#"[{"n":"a","v":1,"s":2}]"#,
                DecodeError::SenmlValueAndSum { record: 1 },
            ),
            (r#"[{"n":"a"}]"#, DecodeError::SenmlNoValue { record: 1 }),
            ("[{}]", DecodeError::SenmlNoValue { record: 1 }),
            (r#"[{"v":1}]"#, DecodeError::SenmlNoName { record: 1 }),
            (
                r#"[{"n":"a","v":1,"crit_":1}]"#,
                DecodeError::SenmlMustUnderstand {
                    record: 1,
                    field: "crit_".into(),
                },
            ),
            (
                r#"[{"bver":11,"n":"a","v":1}]"#,
                DecodeError::SenmlVersion {
                    record: 1,
                    version: 11.0,
                },
            ),
            (
                r#"[{"n":"a","u":"","v":1}]"#,
                DecodeError::SenmlUnit {
                    record: 1,
                    unit: String::new(),
                    reason: "must be 1 to 32 characters",
                },
            ),
            (
                r#"[{"n":"urn:dev:temp °C","v":1}]"#,
                DecodeError::SenmlName {
                    record: 1,
                    name: "urn:dev:temp °C".into(),
                    reason: "may only contain A-Z, a-z, 0-9, '-', '_' and '.'",
                },
            ),
            (
                r#"[{"bn":"urn:dev:ow:10e2073a01080063:","v":1}]"#,
                DecodeError::SenmlName {
                    record: 1,
                    name: "urn:dev:ow:10e2073a01080063:".into(),
                    reason: "must be 1 to 64 characters",
                },
            ),
            (
                r#"[{"n":"a","t":-1e300,"v":1}]"#,
                DecodeError::TimeOutOfRange { seconds: -1e300 },
            ),
        ];
        for (payload, want) in cases {
            assert_eq!(&decode(payload).expect_err("rejected"), want, "{payload}");
        }
    }

    #[test]
    fn time_boundary() {
        let now = ctx().received_at;
        // Just below 2^28 is relative (≈ 8.5 years ahead: rejected as future); 2^28 itself is absolute (1978).
        assert!(matches!(
            resolve_time(RELATIVE_BELOW - 1.0, now),
            Ok(t) if t == now + (RELATIVE_BELOW as i64 - 1) * NANOS_PER_SEC
        ));
        assert_eq!(
            resolve_time(RELATIVE_BELOW, now),
            Ok((1i64 << 28) * NANOS_PER_SEC)
        );
    }
}
