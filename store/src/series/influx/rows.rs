//! Reading series keys, times and values out of parsed tables. Columns are found by name, as the documented
//! response shape gives them (`_time`, `_value`, `_measurement`, `_field`, one column per tag).

use super::csv::Table;
use crate::{Error, Result};
use bydata_schemas::{UnixNanos, parse_rfc3339};
use std::collections::BTreeMap;

/// One record row with its table, to read cells by column name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row<'a> {
    table: &'a Table,
    cells: &'a [String],
}

/// Every row of every table, in response order.
pub(crate) fn rows(tables: &[Table]) -> impl Iterator<Item = Row<'_>> {
    tables.iter().flat_map(|table| {
        table.rows.iter().map(move |cells| Row {
            table,
            cells: cells.as_slice(),
        })
    })
}

fn corrupt(detail: String) -> Error {
    Error::Corrupt {
        what: "InfluxDB query response",
        detail,
    }
}

impl<'a> Row<'a> {
    pub(crate) fn get(&self, name: &str) -> Option<&'a str> {
        let i = self.table.column(name)?;
        self.cells.get(i).map(String::as_str)
    }

    fn datatype(&self, name: &str) -> Option<&'a str> {
        let i = self.table.column(name)?;
        self.table.columns.get(i)?.datatype.as_deref()
    }

    /// The tag set: every non-empty cell whose column is not one InfluxDB adds. Column 0 is the annotation
    /// column; the first `result` and `table` columns are the encoder's (a tag may be called `table` too: it
    /// then comes later); names starting with `_` are InfluxDB's (and refused as tag keys on write).
    pub(crate) fn tags(&self) -> BTreeMap<String, String> {
        let mut seen_result = false;
        let mut seen_table = false;
        let mut tags = BTreeMap::new();
        for (i, (column, value)) in self.table.columns.iter().zip(self.cells).enumerate() {
            let name = column.name.as_str();
            let reserved = i == 0
                || name.starts_with('_')
                || (name == "result" && !std::mem::replace(&mut seen_result, true))
                || (name == "table" && !std::mem::replace(&mut seen_table, true));
            if !reserved && !value.is_empty() {
                tags.insert(name.to_owned(), value.clone());
            }
        }
        tags
    }

    /// `_time` in nanoseconds; `None` for an empty (null) cell.
    pub(crate) fn time(&self) -> Result<Option<UnixNanos>> {
        match self.get("_time") {
            None => Err(corrupt("no _time column".to_owned())),
            Some("") => Ok(None),
            Some(text) => parse_rfc3339(text)
                .map(Some)
                .map_err(|e| corrupt(format!("_time: {e}"))),
        }
    }

    /// `_value` as a number, read by its `#datatype`: double, long, unsignedLong, or boolean (1 or 0).
    /// `None` for an empty (null) cell. A string value is an error: bydata writes numbers.
    pub(crate) fn value(&self) -> Result<Option<f64>> {
        let Some(text) = self.get("_value") else {
            return Err(corrupt("no _value column".to_owned()));
        };
        if text.is_empty() {
            return Ok(None);
        }
        let bad = || corrupt(format!("_value {text:?} is not a number"));
        let value = match self.datatype("_value") {
            Some("long") => text.parse::<i64>().map(|v| v as f64).map_err(|_| bad())?,
            Some("unsignedLong") => text.parse::<u64>().map(|v| v as f64).map_err(|_| bad())?,
            Some("boolean") => match text {
                "true" => 1.0,
                "false" => 0.0,
                _ => return Err(bad()),
            },
            Some("double") | None => text.parse::<f64>().map_err(|_| bad())?,
            Some(other) => {
                return Err(corrupt(format!(
                    "_value has datatype {other:?}, not a number"
                )));
            }
        };
        Ok(Some(value))
    }

    /// `(time, value)` of a row, or `None` when either cell is null.
    pub(crate) fn point(&self) -> Result<Option<(UnixNanos, f64)>> {
        Ok(self.time()?.zip(self.value()?))
    }
}
