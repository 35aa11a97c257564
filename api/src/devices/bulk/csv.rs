//! The bulk-onboarding CSV, read and checked without I/O: a header naming the columns (`name` and `domain`
//! required; `id`, `transport`, `lat`, `lon`, `codec` and any number of `tag:KEY` optional), one device per
//! record. Every problem of every row is collected, each with its line and column, so one answer names them
//! all. RFC 4180 quoting (`"a, b"`, `""` for a quote, line breaks inside quotes); `;` instead of `,` when the
//! header has semicolons and no commas (Excel with Danish settings), then a decimal comma is read too.
use bydata_schemas::{Codec, DeviceId, Domain, Location, TagKey, Transport};
use std::collections::{BTreeMap, HashMap};

/// Most devices in one file: each needs an Argon2id hash (tens of ms in a release build), and the request
/// must finish within its deadline.
pub(crate) const MAX_ROWS: usize = 500;
/// Most bytes in one file (a row is rarely past 300 bytes).
pub(crate) const MAX_BYTES: usize = 1024 * 1024;

const RESERVED_TAGS: [&str; 3] = super::super::RESERVED_TAGS;

/// One device of the file, checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    /// Where its record starts (the header is line 1).
    pub(crate) line: usize,
    /// `None`: made from the name when created.
    pub(crate) id: Option<DeviceId>,
    pub(crate) name: String,
    pub(crate) transport: Transport,
    pub(crate) domain: Domain,
    pub(crate) location: Option<Location>,
    pub(crate) tags: BTreeMap<TagKey, String>,
    pub(crate) codec: Codec,
}

/// What is wrong, where: `line` 1 is the header; `column` is empty for the row as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowProblem {
    pub(crate) line: usize,
    pub(crate) column: String,
    pub(crate) message: String,
}

impl RowProblem {
    fn new(line: usize, column: &str, message: impl Into<String>) -> Self {
        Self {
            line,
            column: column.to_owned(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Column {
    Id,
    Name,
    Transport,
    Domain,
    Lat,
    Lon,
    Codec,
    Tag(TagKey),
}

/// Reads and checks the whole file: every row, or every problem.
#[cfg(test)]
pub(crate) fn parse(text: &str) -> Result<Vec<Row>, Vec<RowProblem>> {
    match read(text) {
        (rows, problems) if problems.is_empty() => Ok(rows),
        (_, problems) => Err(problems),
    }
}

/// Reads and checks the whole file: the good rows, and every problem of the others (none means all good).
pub(crate) fn read(text: &str) -> (Vec<Row>, Vec<RowProblem>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.len() > MAX_BYTES {
        return (
            Vec::new(),
            vec![RowProblem::new(
                0,
                "",
                format!(
                    "the file has {} bytes; at most {MAX_BYTES} are read at once: split it",
                    text.len()
                ),
            )],
        );
    }
    let header_line = text.lines().next().unwrap_or("");
    let delimiter = if header_line.contains(';') && !header_line.contains(',') {
        ';'
    } else {
        ','
    };
    let records = match records(text, delimiter) {
        Ok(r) => r,
        Err(p) => return (Vec::new(), vec![p]),
    };
    let mut records = records.into_iter();
    let Some((_, header)) = records.next() else {
        return (
            Vec::new(),
            vec![RowProblem::new(
                1,
                "",
                "the file is empty: the first line names the columns, e.g. id,name,domain,lat,lon,tag:room",
            )],
        );
    };
    let (columns, mut problems) = columns(&header);
    let body: Vec<(usize, Vec<String>)> = records.collect();
    if body.is_empty() && problems.is_empty() {
        problems.push(RowProblem::new(
            2,
            "",
            "no devices: add one line per device under the header",
        ));
    }
    if body.len() > MAX_ROWS {
        problems.push(RowProblem::new(
            body[MAX_ROWS].0,
            "",
            format!("more than {MAX_ROWS} devices: at most {MAX_ROWS} are onboarded at once; split the file"),
        ));
        return (Vec::new(), problems);
    }
    let decimal_comma = delimiter == ';';
    let mut rows = Vec::with_capacity(body.len());
    let mut first_line_of: HashMap<DeviceId, usize> = HashMap::new();
    for (line, fields) in body {
        if fields.len() != header.len() {
            problems.push(RowProblem::new(
                line,
                "",
                format!(
                    "{} fields; the header names {} columns",
                    fields.len(),
                    header.len()
                ),
            ));
            continue;
        }
        match row(line, &columns, &fields, decimal_comma) {
            Ok(row) => {
                if let Some(id) = &row.id {
                    if let Some(first) = first_line_of.get(id) {
                        problems.push(RowProblem::new(
                            line,
                            "id",
                            format!("{id} is also on line {first}: ids must differ"),
                        ));
                    } else {
                        first_line_of.insert(id.clone(), line);
                    }
                }
                rows.push(row);
            }
            Err(mut p) => problems.append(&mut p),
        }
    }
    (rows, problems)
}

/// The header's columns (`None` for one that could not be read, already a problem).
fn columns(header: &[String]) -> (Vec<Option<Column>>, Vec<RowProblem>) {
    let mut problems = Vec::new();
    let mut out = Vec::with_capacity(header.len());
    for raw in header {
        let name = raw.trim();
        let column = match name.to_ascii_lowercase().as_str() {
            "id" => Some(Column::Id),
            "name" => Some(Column::Name),
            "transport" => Some(Column::Transport),
            "domain" => Some(Column::Domain),
            "lat" | "latitude" => Some(Column::Lat),
            "lon" | "lng" | "longitude" => Some(Column::Lon),
            "codec" => Some(Column::Codec),
            _ => match name.strip_prefix("tag:") {
                Some(key) if RESERVED_TAGS.contains(&key) => {
                    problems.push(RowProblem::new(
                        1,
                        name,
                        format!("tag {key:?} is set by bydata itself (device, domain and org are reserved)"),
                    ));
                    None
                }
                Some(key) => match TagKey::new(key) {
                    Ok(key) => Some(Column::Tag(key)),
                    Err(e) => {
                        problems.push(RowProblem::new(1, name, e.to_string()));
                        None
                    }
                },
                None => {
                    problems.push(RowProblem::new(
                        1,
                        name,
                        "unknown column: expected id, name, transport, domain, lat, lon, codec or tag:KEY",
                    ));
                    None
                }
            },
        };
        if let Some(c) = &column
            && out.contains(&Some(c.clone()))
        {
            problems.push(RowProblem::new(1, name, "this column appears twice"));
        }
        out.push(column);
    }
    for (needed, column) in [("name", Column::Name), ("domain", Column::Domain)] {
        if !out.contains(&Some(column)) {
            problems.push(RowProblem::new(
                1,
                needed,
                "missing column: every device needs it",
            ));
        }
    }
    if out.contains(&Some(Column::Lat)) != out.contains(&Some(Column::Lon)) {
        problems.push(RowProblem::new(
            1,
            "lat",
            "give both lat and lon, or neither",
        ));
    }
    (out, problems)
}

/// One record, checked field by field: the row, or every problem of it.
fn row(
    line: usize,
    columns: &[Option<Column>],
    fields: &[String],
    decimal_comma: bool,
) -> Result<Row, Vec<RowProblem>> {
    let mut problems = Vec::new();
    let mut bad = |column: &str, message: String| {
        problems.push(RowProblem::new(line, column, message));
    };
    let (mut id, mut name, mut transport, mut domain) = (None, None, Transport::Mqtt, None);
    let (mut lat, mut lon, mut codec) = (None, None, Codec::Auto);
    // A coordinate that is not a number is its own problem: the pair is then not checked again.
    let mut unreadable = false;
    let mut tags = BTreeMap::new();
    let number = |v: &str| {
        let v = if decimal_comma {
            v.replace(',', ".")
        } else {
            v.to_owned()
        };
        v.parse::<f64>().ok().filter(|n| n.is_finite())
    };
    for (column, raw) in columns.iter().zip(fields) {
        let Some(column) = column else { continue };
        let value = raw.trim();
        match column {
            Column::Id if value.is_empty() => {}
            Column::Id => match DeviceId::new(value) {
                Ok(v) => id = Some(v),
                Err(e) => bad("id", e.to_string()),
            },
            Column::Name if value.is_empty() || value.chars().count() > 200 => {
                bad("name", "must be 1 to 200 characters".into());
            }
            Column::Name => name = Some(value.to_owned()),
            Column::Transport => match value {
                "" | "mqtt" => transport = Transport::Mqtt,
                "lorawan" => bad(
                    "transport",
                    "a LoRaWAN device needs its keys: onboard it on its own (POST /api/v1/devices)"
                        .into(),
                ),
                other => bad(
                    "transport",
                    format!("{other:?}: bulk onboarding takes \"mqtt\" devices"),
                ),
            },
            Column::Domain => match Domain::known(value) {
                Ok(v) => domain = Some(v),
                Err(e) => bad("domain", e.to_string()),
            },
            Column::Lat | Column::Lon if value.is_empty() => {}
            Column::Lat => match number(value) {
                Some(v) => lat = Some(v),
                None => {
                    unreadable = true;
                    bad("lat", format!("{value:?} is not a number"));
                }
            },
            Column::Lon => match number(value) {
                Some(v) => lon = Some(v),
                None => {
                    unreadable = true;
                    bad("lon", format!("{value:?} is not a number"));
                }
            },
            Column::Codec if value.is_empty() => {}
            Column::Codec => match value.parse::<Codec>() {
                Ok(v) => codec = v,
                Err(e) => bad("codec", e.to_string()),
            },
            Column::Tag(_) if value.is_empty() => {}
            Column::Tag(key) if value.chars().count() > 200 => {
                bad(
                    &format!("tag:{key}"),
                    "a tag's value is at most 200 characters".into(),
                );
            }
            Column::Tag(key) => {
                tags.insert(key.clone(), value.to_owned());
            }
        }
    }
    let location = match (lat, lon) {
        (Some(lat), Some(lon)) => match Location::new(lat, lon) {
            Ok(l) => Some(l),
            Err(e) => {
                bad("lat", e.to_string());
                None
            }
        },
        _ if unreadable => None,
        (None, None) => None,
        (Some(_), None) => {
            bad("lon", "lat is given: give lon too".into());
            None
        }
        (None, Some(_)) => {
            bad("lat", "lon is given: give lat too".into());
            None
        }
    };
    match (name, domain) {
        (Some(name), Some(domain)) if problems.is_empty() => Ok(Row {
            line,
            id,
            name,
            transport,
            domain,
            location,
            tags,
            codec,
        }),
        _ => Err(problems),
    }
}

/// Splits `text` into records of fields; each with the line it starts on (1-based). Blank lines are skipped.
fn records(text: &str, delimiter: char) -> Result<Vec<(usize, Vec<String>)>, RowProblem> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    let (mut fields, mut field) = (Vec::new(), String::new());
    let mut record_line = 1;
    let mut quoted = false;
    // Whether the current field began with a quote (and so may not have text after its closing quote).
    let mut was_quoted = false;
    let end_record = |out: &mut Vec<(usize, Vec<String>)>, fields: &mut Vec<String>, start| {
        let record = std::mem::take(fields);
        if !(record.len() == 1 && record[0].trim().is_empty()) {
            out.push((start, record));
        }
    };
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.trim().is_empty() && !was_quoted => {
                field.clear();
                quoted = true;
                was_quoted = true;
            }
            '"' => {
                return Err(RowProblem::new(
                    line,
                    "",
                    "a quote inside an unquoted field: quote the whole field and double the quote (\"a \"\"b\"\"\")",
                ));
            }
            c if c == delimiter => {
                fields.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                fields.push(std::mem::take(&mut field));
                was_quoted = false;
                end_record(&mut out, &mut fields, record_line);
                line += 1;
                record_line = line;
            }
            c if was_quoted && !c.is_whitespace() => {
                return Err(RowProblem::new(
                    line,
                    "",
                    "text after a closing quote: quote the whole field",
                ));
            }
            c => field.push(c),
        }
        if out.len() > MAX_ROWS + 1 {
            // Enough to say there are too many; reading on would only cost memory.
            return Ok(out);
        }
    }
    if quoted {
        return Err(RowProblem::new(
            record_line,
            "",
            "a quoted field is never closed",
        ));
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        end_record(&mut out, &mut fields, record_line);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
