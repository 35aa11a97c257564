//! A period's table rendered as CSV (RFC 4180), JSON and GeoJSON (RFC 7946): bytes that depend only on the
//! table, so the same data renders to the same files and checksums.
use crate::model::FileFormat;
use crate::period::time_in;
use crate::table::Table;
use crate::values::{csv_field, csv_number};
use serde_json::{Value, json};

impl Table {
    pub(crate) fn render(&self, format: FileFormat, id: &str, period: &str) -> Vec<u8> {
        match format {
            FileFormat::Csv => self.csv().into_bytes(),
            FileFormat::Json => self.json(id, period),
            FileFormat::Geojson => self.geojson(id, period),
        }
    }

    /// RFC 4180: `time,device,{columns},measurement,value,unit,suppressed`, one row per series and bucket.
    fn csv(&self) -> String {
        let mut out = String::from("time,device");
        for c in &self.columns {
            out.push(',');
            out.push_str(&csv_field(c, ','));
        }
        out.push_str(",measurement,value,unit,suppressed\r\n");
        for s in &self.series {
            for (t, v, suppressed) in &s.points {
                out.push_str(&time_in(self.tz, *t));
                out.push(',');
                out.push_str(s.device.as_deref().unwrap_or(""));
                for c in &self.columns {
                    out.push(',');
                    out.push_str(&csv_field(s.tags.get(c).map_or("", String::as_str), ','));
                }
                out.push(',');
                out.push_str(&self.measurement);
                out.push(',');
                if let Some(v) = v {
                    out.push_str(&csv_number(*v));
                }
                out.push(',');
                out.push_str(&csv_field(s.unit.as_deref().unwrap_or(""), ','));
                out.push(',');
                out.push_str(if *suppressed { "true" } else { "false" });
                out.push_str("\r\n");
            }
        }
        out
    }

    fn header(&self, id: &str, period: &str) -> Value {
        json!({
            "dataset": id,
            "period": period,
            "measurement": self.measurement,
            "field": self.field,
            "every": self.every,
            "fn": self.func,
            "time_zone": self.tz.name(),
        })
    }

    fn json(&self, id: &str, period: &str) -> Vec<u8> {
        let mut doc = self.header(id, period);
        doc["series"] = self
            .series
            .iter()
            .map(|s| {
                json!({
                    "device": s.device,
                    "tags": s.tags,
                    "unit": s.unit,
                    "values": s.points.iter().map(|(t, v, suppressed)| {
                        let mut p = json!({"time": time_in(self.tz, *t), "value": v});
                        if *suppressed {
                            p["suppressed"] = json!(true);
                        }
                        p
                    }).collect::<Vec<_>>(),
                })
            })
            .collect();
        finish(&doc)
    }

    /// RFC 7946: one feature per series, the device's (gated) location with the period's latest value.
    fn geojson(&self, id: &str, period: &str) -> Vec<u8> {
        let features: Vec<Value> = self
            .series
            .iter()
            .filter(|s| s.device.is_some())
            .map(|s| {
                let latest = s
                    .points
                    .iter()
                    .rev()
                    .find(|(_, v, sup)| v.is_some() || *sup);
                let mut props = json!({
                    "device": s.device,
                    "measurement": self.measurement,
                    "unit": s.unit,
                    "time": latest.map(|(t, _, _)| time_in(self.tz, *t)),
                    "value": latest.and_then(|(_, v, _)| *v),
                });
                if latest.is_some_and(|(_, _, sup)| *sup) {
                    props["suppressed"] = json!(true);
                }
                for (k, v) in &s.tags {
                    props[k] = json!(v);
                }
                json!({
                    "type": "Feature",
                    "geometry": s.location.map(|l| json!({
                        "type": "Point",
                        "coordinates": [round7(l.lon()), round7(l.lat())],
                    })),
                    "properties": props,
                })
            })
            .collect();
        let mut doc = json!({"type": "FeatureCollection", "features": features});
        doc["bydata"] = self.header(id, period);
        finish(&doc)
    }
}

/// RFC 7946 §11.2: seven decimals (about 1 cm) is more than any sensor's position is worth.
fn round7(x: f64) -> f64 {
    (x * 1e7).round() / 1e7
}

fn finish(doc: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(doc).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}
