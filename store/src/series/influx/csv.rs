//! A parser for the annotated CSV that InfluxDB 2's `/api/v2/query` returns. Pure and total: text in, tables or
//! a typed error out, never a panic (property-tested in `tests.rs`).
//!
//! Format facts, from the InfluxDB v2 reference "Annotated CSV"
//! (<https://docs.influxdata.com/influxdb/v2/reference/syntax/annotated-csv/>):
//! - annotation rows start with `#` in the first column (`#datatype`, `#group`, `#default`); the first column of
//!   every other row is the (empty) annotation column, so header and record rows start with a comma;
//! - one header row per table; then record rows; `result` and `table` columns come first;
//! - an empty row, or new annotation rows, start a new table with its own annotations and header (tables of one
//!   result that share a schema may share a block, told apart by the `table` column);
//! - `#default` gives the value of an empty cell;
//! - an error during execution is a table with the columns `error` and `reference`; when it comes after partial
//!   results the HTTP status is still 200, so the caller must look for it.
//!
//! Cells follow RFC 4180 quoting: a quoted cell may hold commas, doubled quotes and newlines. InfluxDB writes
//! `\r\n` line ends; a `\r` before `\n` is dropped.

/// One column of a table, with its annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Column {
    pub(crate) name: String,
    /// The `#datatype` annotation (`double`, `long`, `dateTime:RFC3339`…), when the response had one.
    pub(crate) datatype: Option<String>,
    /// Whether `#group` marks the column as part of the group key.
    pub(crate) group: bool,
}

/// A block of rows under one header. Every row has exactly `columns.len()` cells, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Table {
    pub(crate) columns: Vec<Column>,
    pub(crate) rows: Vec<Vec<String>>,
}

impl Table {
    /// The index of the first column called `name`.
    pub(crate) fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// Why a response could not be read as tables.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CsvError {
    /// The query failed in InfluxDB; the response carried an error table.
    #[error("query failed in InfluxDB: {message} (reference {reference:?})")]
    Query { message: String, reference: String },
    /// Not annotated CSV as documented. `record` is 1-based.
    #[error("malformed annotated CSV at record {record}: {reason}")]
    Malformed { record: usize, reason: &'static str },
}

/// Longest cell text copied into an error, in characters.
const MAX_MESSAGE_CHARS: usize = 512;

/// Parses a whole response body into its tables, in order. Empty input (an empty result) gives no tables.
pub(crate) fn parse(text: &str) -> Result<Vec<Table>, CsvError> {
    let mut builder = Builder::default();
    for (index, record) in Records::new(text).enumerate() {
        builder.record(index + 1, record)?;
    }
    builder.finish()
}

/// Annotations seen since the last table boundary, waiting for their header.
#[derive(Debug, Default)]
struct Annotations {
    datatype: Option<Vec<String>>,
    group: Option<Vec<String>>,
    default: Option<Vec<String>>,
}

#[derive(Debug, Default)]
struct Builder {
    tables: Vec<Table>,
    annotations: Annotations,
    current: Option<Table>,
    defaults: Vec<String>,
}

impl Builder {
    fn record(&mut self, number: usize, record: Record) -> Result<(), CsvError> {
        let Record::Cells(cells) = record else {
            // A blank line ends the table; the next one brings its own annotations and header.
            return self.close();
        };
        let first = cells.first().map(String::as_str).unwrap_or_default();
        if let Some(name) = first.strip_prefix('#') {
            if self.current.is_some() {
                self.close()?;
            }
            let values: Vec<String> = cells.iter().skip(1).cloned().collect();
            match name {
                "datatype" => self.annotations.datatype = Some(values),
                "group" => self.annotations.group = Some(values),
                "default" => self.annotations.default = Some(values),
                // Unknown annotations are allowed by the format; nothing here needs them.
                _ => {}
            }
            return Ok(());
        }
        match &mut self.current {
            None => self.header(number, cells),
            Some(table) => {
                if cells.len() != table.columns.len() {
                    return Err(CsvError::Malformed {
                        record: number,
                        reason: "a record has a different number of cells than its header",
                    });
                }
                let row = cells
                    .into_iter()
                    .zip(&self.defaults)
                    .map(|(cell, default)| {
                        if cell.is_empty() {
                            default.clone()
                        } else {
                            cell
                        }
                    })
                    .collect();
                table.rows.push(row);
                Ok(())
            }
        }
    }

    fn header(&mut self, number: usize, cells: Vec<String>) -> Result<(), CsvError> {
        let annotations = std::mem::take(&mut self.annotations);
        // An annotation row has the annotation name where the header has its empty first cell.
        let fits = |a: &Option<Vec<String>>| {
            a.as_ref()
                .is_none_or(|values| values.len() + 1 == cells.len())
        };
        if !(fits(&annotations.datatype) && fits(&annotations.group) && fits(&annotations.default))
        {
            return Err(CsvError::Malformed {
                record: number,
                reason: "an annotation row has a different number of cells than the header",
            });
        }
        // Column 0 is the annotation column: it has no annotation values of its own.
        let annotation = |a: &Option<Vec<String>>, i: usize| -> Option<String> {
            let values = a.as_ref()?;
            i.checked_sub(1).and_then(|j| values.get(j)).cloned()
        };
        self.defaults = (0..cells.len())
            .map(|i| annotation(&annotations.default, i).unwrap_or_default())
            .collect();
        let columns = cells
            .into_iter()
            .enumerate()
            .map(|(i, name)| Column {
                name,
                datatype: annotation(&annotations.datatype, i),
                group: annotation(&annotations.group, i).is_some_and(|g| g == "true"),
            })
            .collect();
        self.current = Some(Table {
            columns,
            rows: Vec::new(),
        });
        Ok(())
    }

    fn close(&mut self) -> Result<(), CsvError> {
        self.annotations = Annotations::default();
        let Some(table) = self.current.take() else {
            return Ok(());
        };
        if is_error_table(&table) {
            let cell = |name: &str| {
                table
                    .column(name)
                    .and_then(|i| table.rows.first().and_then(|row| row.get(i)))
                    .map(|s| cut(s))
                    .unwrap_or_default()
            };
            let message = cell("error");
            return Err(CsvError::Query {
                message: if message.is_empty() {
                    "(no message)".to_owned()
                } else {
                    message
                },
                reference: cell("reference"),
            });
        }
        self.tables.push(table);
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<Table>, CsvError> {
        self.close()?;
        Ok(self.tables)
    }
}

/// The documented error table: the annotation column, then `error` and `reference`.
fn is_error_table(table: &Table) -> bool {
    let names: Vec<&str> = table
        .columns
        .iter()
        .skip(1)
        .map(|c| c.name.as_str())
        .collect();
    names == ["error", "reference"]
}

fn cut(s: &str) -> String {
    match s.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => format!("{}…", s.get(..at).unwrap_or_default()),
        None => s.to_owned(),
    }
}

/// One CSV record: a blank line, or its cells with quoting resolved.
#[derive(Debug, PartialEq, Eq)]
enum Record {
    Blank,
    Cells(Vec<String>),
}

/// Splits text into RFC 4180 records. Lenient where the RFC is strict (a quote inside an unquoted cell, or text
/// after a closing quote, is kept as text), so any input yields records.
struct Records<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
}

impl<'a> Records<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            chars: text.chars().peekable(),
        }
    }
}

impl Iterator for Records<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        self.chars.peek()?;
        let mut cells = Vec::new();
        let mut cell = String::new();
        let mut quoted_any = false;
        let mut in_quotes = false;
        while let Some(c) = self.chars.next() {
            if in_quotes {
                match c {
                    '"' if self.chars.peek() == Some(&'"') => {
                        self.chars.next();
                        cell.push('"');
                    }
                    '"' => in_quotes = false,
                    _ => cell.push(c),
                }
                continue;
            }
            match c {
                '"' if cell.is_empty() => {
                    in_quotes = true;
                    quoted_any = true;
                }
                ',' => cells.push(std::mem::take(&mut cell)),
                '\r' if self.chars.peek() == Some(&'\n') => {}
                '\n' => break,
                _ => cell.push(c),
            }
        }
        if cells.is_empty() && cell.is_empty() && !quoted_any {
            return Some(Record::Blank);
        }
        cells.push(cell);
        Some(Record::Cells(cells))
    }
}
