//! The `SHOW` statements of Grafana's query builder, answered from the series the caller may read: databases
//! and retention policies (one each: bydata has one store, whose series are scoped by the key's
//! organisations), measurements, tag keys, tag values and field keys.
use super::cond::{self, TagCond};
use super::{Cell, Ctx, Refusal, Series};
use bydata_influxql::{Expr, KeyMatch, Match, Source};
use bydata_schemas::{MeasurementName, SeriesKey};
use bydata_store::SeriesFilter;
use std::collections::{BTreeMap, BTreeSet};

/// The one database name bydata shows (any `db` is accepted: the key decides what is read).
pub(crate) const DATABASE: &str = "bydata";
/// Most tag values one `SHOW TAG VALUES` lists, unless its `LIMIT` asks for fewer.
const MAX_TAG_VALUES: usize = 10_000;

fn series(name: &str, columns: &[&str], values: Vec<Vec<Cell>>) -> Series {
    Series {
        name: name.to_owned(),
        tags: None,
        columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        values,
    }
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Str(s.into())
}

pub(crate) fn databases() -> Vec<Series> {
    vec![series("databases", &["name"], vec![vec![text(DATABASE)]])]
}

pub(crate) fn retention_policies() -> Vec<Series> {
    vec![series(
        "",
        &[
            "name",
            "duration",
            "shardGroupDuration",
            "replicaN",
            "default",
        ],
        vec![vec![
            text("autogen"),
            text("0s"),
            text("168h0m0s"),
            Cell::Int(1),
            Cell::Bool(true),
        ]],
    )]
}

/// What `FROM` names: measurements by name or regular expression (none named: all).
#[derive(Debug)]
enum From {
    All,
    Names(BTreeSet<String>),
    Regexes(Vec<regex_automata::dfa::regex::Regex>, BTreeSet<String>),
}

impl From {
    fn new(sources: &[Source]) -> Result<Self, Refusal> {
        if sources.is_empty() {
            return Ok(From::All);
        }
        let mut names = BTreeSet::new();
        let mut res = Vec::new();
        for s in sources {
            match &s.measurement {
                Match::Name(n) => {
                    names.insert(n.clone());
                }
                Match::Regex(r) => res.push(cond::regex(r)?),
            }
        }
        Ok(if res.is_empty() {
            From::Names(names)
        } else {
            From::Regexes(res, names)
        })
    }

    fn admits(&self, m: &str) -> bool {
        match self {
            From::All => true,
            From::Names(n) => n.contains(m),
            From::Regexes(res, n) => n.contains(m) || res.iter().any(|r| r.is_match(m)),
        }
    }

    /// The one measurement to ask the store for, when exactly one is named.
    fn single(&self) -> Option<MeasurementName> {
        match self {
            From::Names(n) if n.len() == 1 => {
                n.iter().next().and_then(|m| MeasurementName::new(m).ok())
            }
            _ => None,
        }
    }
}

/// The series the caller may read in `from` that meet `condition` (time conditions are ignored, as
/// InfluxDB 1.x ignores them in `SHOW`: its index has no time).
async fn keys(
    ctx: &Ctx<'_>,
    from: &From,
    condition: Option<&Expr>,
) -> Result<Result<Vec<SeriesKey>, Refusal>, crate::Error> {
    let tags = match condition.map(|c| cond::split(Some(c), ctx.now)).transpose() {
        Ok(w) => w.map_or(TagCond::True, |w| w.tags),
        Err(r) => return Ok(Err(r)),
    };
    if matches!(from, From::Names(n) if n.len() == 1) && from.single().is_none() {
        // A name no series can have.
        return Ok(Ok(Vec::new()));
    }
    let mut required = BTreeMap::new();
    tags.required(&mut required);
    let filter = SeriesFilter {
        scope: ctx.scope.clone(),
        measurement: from.single(),
        field: None,
        tags: required,
    };
    Ok(Ok(ctx
        .reader
        .series(&filter)
        .await?
        .into_iter()
        .map(|s| s.key)
        .filter(|k| from.admits(k.measurement.as_str()) && tags.key_matches(k))
        .collect()))
}

fn page<T>(items: impl Iterator<Item = T>, limit: Option<u64>, offset: Option<u64>) -> Vec<T> {
    let skip = usize::try_from(offset.unwrap_or(0)).unwrap_or(usize::MAX);
    let take = usize::try_from(limit.unwrap_or(u64::MAX)).unwrap_or(usize::MAX);
    items.skip(skip).take(take).collect()
}

macro_rules! refused {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return Ok(Err(r)),
        }
    };
}

pub(crate) async fn measurements(
    ctx: &Ctx<'_>,
    with: Option<&Match>,
    condition: Option<&Expr>,
    (limit, offset): (Option<u64>, Option<u64>),
) -> Result<Result<Vec<Series>, Refusal>, crate::Error> {
    let from = refused!(From::new(
        &with
            .map(|m| Source {
                database: None,
                retention_policy: None,
                measurement: m.clone(),
            })
            .into_iter()
            .collect::<Vec<_>>()
    ));
    let keys = refused!(keys(ctx, &from, condition).await?);
    let names: BTreeSet<&str> = keys.iter().map(|k| k.measurement.as_str()).collect();
    let values = page(names.into_iter().map(|n| vec![text(n)]), limit, offset);
    Ok(Ok(if values.is_empty() {
        Vec::new()
    } else {
        vec![series("measurements", &["name"], values)]
    }))
}

/// Per measurement, sorted: `SHOW TAG KEYS` and `SHOW FIELD KEYS` share this shape.
fn per_measurement(
    by: BTreeMap<&str, BTreeSet<String>>,
    columns: &[&str],
    row: impl Fn(String) -> Vec<Cell>,
    (limit, offset): (Option<u64>, Option<u64>),
) -> Vec<Series> {
    by.into_iter()
        .filter_map(|(m, items)| {
            let values = page(items.into_iter().map(&row), limit, offset);
            (!values.is_empty()).then(|| series(m, columns, values))
        })
        .collect()
}

pub(crate) async fn tag_keys(
    ctx: &Ctx<'_>,
    from: &[Source],
    condition: Option<&Expr>,
    paging: (Option<u64>, Option<u64>),
) -> Result<Result<Vec<Series>, Refusal>, crate::Error> {
    let from = refused!(From::new(from));
    let keys = refused!(keys(ctx, &from, condition).await?);
    let mut by: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for k in &keys {
        by.entry(k.measurement.as_str())
            .or_default()
            .extend(k.tags.keys().cloned());
    }
    Ok(Ok(per_measurement(
        by,
        &["tagKey"],
        |k| vec![text(k)],
        paging,
    )))
}

pub(crate) async fn field_keys(
    ctx: &Ctx<'_>,
    from: &[Source],
    paging: (Option<u64>, Option<u64>),
) -> Result<Result<Vec<Series>, Refusal>, crate::Error> {
    let from = refused!(From::new(from));
    let keys = refused!(keys(ctx, &from, None).await?);
    let mut by: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for k in &keys {
        by.entry(k.measurement.as_str())
            .or_default()
            .insert(k.field.to_string());
    }
    // bydata stores numbers only: every field is a float.
    Ok(Ok(per_measurement(
        by,
        &["fieldKey", "fieldType"],
        |f| vec![text(f), text("float")],
        paging,
    )))
}

pub(crate) async fn tag_values(
    ctx: &Ctx<'_>,
    from: &[Source],
    key: &KeyMatch,
    condition: Option<&Expr>,
    (limit, offset): (Option<u64>, Option<u64>),
) -> Result<Result<Vec<Series>, Refusal>, crate::Error> {
    let from = refused!(From::new(from));
    let wanted: Box<dyn Fn(&str) -> bool + Send + Sync> = match key {
        KeyMatch::Eq(k) => {
            let k = k.clone();
            Box::new(move |x| x == k)
        }
        KeyMatch::NotEq(k) => {
            let k = k.clone();
            Box::new(move |x| x != k)
        }
        KeyMatch::In(ks) => {
            let ks = ks.clone();
            Box::new(move |x| ks.iter().any(|k| k == x))
        }
        KeyMatch::Regex(r) | KeyMatch::NotRegex(r) => {
            let re = refused!(cond::regex(r));
            let negate = matches!(key, KeyMatch::NotRegex(_));
            Box::new(move |x| re.is_match(x) != negate)
        }
    };
    let keys = refused!(keys(ctx, &from, condition).await?);
    let mut by: BTreeMap<&str, BTreeSet<(String, String)>> = BTreeMap::new();
    for k in &keys {
        let pairs = by.entry(k.measurement.as_str()).or_default();
        for (tk, tv) in &k.tags {
            if wanted(tk) && pairs.len() < MAX_TAG_VALUES {
                pairs.insert((tk.clone(), tv.clone()));
            }
        }
    }
    Ok(Ok(by
        .into_iter()
        .filter_map(|(m, pairs)| {
            let values = page(
                pairs.into_iter().map(|(k, v)| vec![text(k), text(v)]),
                limit,
                offset,
            );
            (!values.is_empty()).then(|| series(m, &["key", "value"], values))
        })
        .collect()))
}
