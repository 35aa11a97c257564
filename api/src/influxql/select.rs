//! `SELECT`: the store's series, selected by measurement, field and tags (`cond`), folded into the buckets of
//! `GROUP BY time(…)` through the series port's partial aggregates (`SeriesReader::partials_many`, which the
//! store's own query engine uses), merged per `GROUP BY` tag set, finished with the aggregate; then what the
//! store does not do, done here: arithmetic on the aggregate, `fill`, `ORDER BY time DESC`, `LIMIT`/`OFFSET`,
//! `SLIMIT`/`SOFFSET`. Without `GROUP BY time` an aggregate covers the whole range (one row), and plain fields
//! are the raw points.
use super::cond::{self, shown};
use super::fill::fill;
use super::{Cell, Ctx, Refusal, Series};
use bydata_influxql::{Dimension, Expr, Fill, Op, Select};
use bydata_schemas::{MeasurementName, SeriesKey, UnixNanos};
use bydata_store::SeriesFilter;
use bydata_store::query::{AggFn, Cost, Every, Partial, bucket_bounds};
use chrono_tz::Tz;
use std::collections::BTreeMap;

/// The rows of one answer series: bucket (or point) time and a value per column.
pub(super) type Rows = Vec<(UnixNanos, Vec<Option<f64>>)>;
/// Answer series by the tags they are grouped by.
type Grouped = Vec<(BTreeMap<String, String>, Rows)>;
/// Raw rows of one group, by time and the tags of the series they come from.
type Joined = BTreeMap<(UnixNanos, BTreeMap<String, String>), Vec<Option<f64>>>;

/// Series whose partials are asked for at once.
const CHUNK: usize = 256;
const DAY_NS: i64 = 86_400_000_000_000;

/// An aggregate bydata computes from its partials.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Agg {
    Fn(AggFn),
    /// `spread`: max − min.
    Spread,
}

/// The aggregates Grafana's editor offers that bydata computes, named as the store names them (InfluxQL has no
/// `increase` or `consumption`: those are refused with the others, by name).
fn aggregate(name: &str) -> Result<Agg, Refusal> {
    let name_lower = name.to_ascii_lowercase();
    match name_lower.as_str() {
        "spread" => Ok(Agg::Spread),
        "mean" | "min" | "max" | "sum" | "count" | "first" | "last" => {
            name_lower.parse().map(Agg::Fn).map_err(|_| refused(name))
        }
        _ => Err(refused(name)),
    }
}

fn refused(name: &str) -> Refusal {
    Refusal(format!(
        "the function {name}() is not supported: bydata aggregates with mean, min, max, sum, count, first, last \
         or spread"
    ))
}

/// One output column: the field it reads, its aggregate (none for raw points) and the expression around it.
#[derive(Debug)]
struct Column {
    name: String,
    field: MeasurementName,
    agg: Option<Agg>,
    expr: Expr,
}

/// The data reference of a column expression: `agg("field")` or `"field"`, exactly one.
fn reference(e: &Expr, found: &mut Vec<(Option<String>, String)>) -> Result<(), Refusal> {
    match e {
        Expr::Call { name, args } => {
            aggregate(name)?;
            let [arg] = args.as_slice() else {
                return Err(Refusal(format!(
                    "{} is not supported: aggregates take one field, e.g. mean(\"value\")",
                    shown(e)
                )));
            };
            match arg {
                Expr::Ident { name: field, .. } => {
                    found.push((Some(name.clone()), field.clone()));
                    Ok(())
                }
                _ => Err(Refusal(format!(
                    "{} is not supported: name one field, e.g. {name}(\"value\")",
                    shown(e)
                ))),
            }
        }
        Expr::Ident { name, .. } => {
            found.push((None, name.clone()));
            Ok(())
        }
        Expr::Binary {
            op: Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Mod,
            lhs,
            rhs,
        } => {
            reference(lhs, found)?;
            reference(rhs, found)
        }
        Expr::Int(_) | Expr::Float(_) => Ok(()),
        Expr::Wildcard => Err(Refusal(
            "SELECT * is not supported: name the fields (SHOW FIELD KEYS lists them), e.g. SELECT \"value\""
                .into(),
        )),
        other => Err(Refusal(format!(
            "{} cannot be selected: select a field or an aggregate of one",
            shown(other)
        ))),
    }
}

fn columns(s: &Select) -> Result<Vec<Column>, Refusal> {
    let mut out: Vec<Column> = Vec::new();
    for f in &s.fields {
        let mut refs = Vec::new();
        reference(&f.expr, &mut refs)?;
        let [(func, field)] = refs.as_slice() else {
            return Err(Refusal(format!(
                "{} is not supported: each column may read one field",
                shown(&f.expr)
            )));
        };
        let agg = func.as_deref().map(aggregate).transpose()?;
        let field = MeasurementName::new(field)
            .map_err(|_| Refusal(format!("\"{field}\" is not a field name bydata can hold")))?;
        let base = f
            .alias
            .clone()
            .or_else(|| func.clone())
            .unwrap_or_else(|| field.to_string());
        // Two columns of one name: InfluxDB numbers the later ones (mean, mean_1).
        let mut name = base.clone();
        let mut n = 0;
        while out.iter().any(|c| c.name == name) {
            n += 1;
            name = format!("{base}_{n}");
        }
        out.push(Column {
            name,
            field,
            agg,
            expr: f.expr.clone(),
        });
    }
    let aggregated = out.iter().filter(|c| c.agg.is_some()).count();
    if aggregated != 0 && aggregated != out.len() {
        return Err(Refusal(
            "mixing aggregates and plain fields is not supported: aggregate every field, or none"
                .into(),
        ));
    }
    if aggregated == 0 && s.group_by_time.is_some() {
        return Err(Refusal(
            "GROUP BY time(…) needs an aggregate in every column, e.g. mean(\"value\")".into(),
        ));
    }
    Ok(out)
}

/// The value of a column's expression, given its field's (aggregated) value.
fn eval(e: &Expr, v: f64) -> Option<f64> {
    Some(match e {
        Expr::Call { .. } | Expr::Ident { .. } => v,
        Expr::Int(n) => *n as f64,
        Expr::Float(x) => *x,
        Expr::Binary { op, lhs, rhs } => {
            let (a, b) = (eval(lhs, v)?, eval(rhs, v)?);
            match op {
                Op::Add => a + b,
                Op::Sub => a - b,
                Op::Mul => a * b,
                Op::Div => a / b,
                Op::Mod => a % b,
                _ => return None,
            }
        }
        _ => return None,
    })
    .filter(|x| x.is_finite())
}

/// The tags a series is grouped by.
fn group_of(
    dims: &[(Dimension, Option<regex_automata::dfa::regex::Regex>)],
    key: &SeriesKey,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (d, re) in dims {
        match d {
            Dimension::Tag(k) => {
                out.insert(k.clone(), key.tag(k).unwrap_or("").to_owned());
            }
            Dimension::All => out.extend(key.tags.clone()),
            Dimension::Regex(_) => {
                for (k, v) in &key.tags {
                    if re.as_ref().is_some_and(|re| re.is_match(k)) {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
        }
    }
    out
}

pub(crate) async fn run(
    ctx: &Ctx<'_>,
    s: &Select,
) -> Result<Result<Vec<Series>, Refusal>, crate::Error> {
    let plan = match prepare(ctx, s) {
        Ok(p) => p,
        Err(r) => return Ok(Err(r)),
    };
    let Some(measurement) = plan.measurement.clone() else {
        return Ok(Ok(Vec::new()));
    };
    // The series of each field, narrowed by the store on the tags that must be equal, then by the condition.
    let mut fields: Vec<MeasurementName> = plan.columns.iter().map(|c| c.field.clone()).collect();
    fields.sort();
    fields.dedup();
    let mut series: Vec<(usize, SeriesKey)> = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        let filter = SeriesFilter {
            scope: ctx.scope.clone(),
            measurement: Some(measurement.clone()),
            field: Some(field.clone()),
            tags: plan.required.clone(),
        };
        for info in ctx.reader.series(&filter).await? {
            if plan.where_.tags.key_matches(&info.key) {
                series.push((i, info.key));
            }
        }
    }
    if series.len() as u64 > ctx.limits.max_series {
        return Ok(Err(Refusal(format!(
            "this query reads {} series, more than the {} one query may: narrow it with a tag condition",
            series.len(),
            ctx.limits.max_series
        ))));
    }
    let mut groups: BTreeMap<BTreeMap<String, String>, usize> = BTreeMap::new();
    let group_index: Vec<usize> = series
        .iter()
        .map(|(_, k)| {
            let next = groups.len();
            *groups.entry(group_of(&plan.dims, k)).or_insert(next)
        })
        .collect();
    let out = if plan.columns[0].agg.is_some() {
        aggregated(ctx, s, &plan, &fields, &series, &groups, &group_index).await?
    } else {
        raw(ctx, &plan, &fields, &series, &groups, &group_index).await?
    };
    Ok(out.map(|series| finish(s, series)))
}

#[derive(Debug)]
struct Plan {
    /// `None`: a name no series can have (the answer is empty).
    measurement: Option<MeasurementName>,
    columns: Vec<Column>,
    where_: cond::Where,
    required: BTreeMap<String, String>,
    dims: Vec<(Dimension, Option<regex_automata::dfa::regex::Regex>)>,
    tz: Tz,
    from: UnixNanos,
    to: UnixNanos,
}

fn prepare(ctx: &Ctx<'_>, s: &Select) -> Result<Plan, Refusal> {
    let [source] = s.from.as_slice() else {
        return Err(Refusal(
            "select from one measurement at a time (one query per measurement in Grafana)".into(),
        ));
    };
    let measurement = match &source.measurement {
        bydata_influxql::Match::Name(m) => MeasurementName::new(m).ok(),
        bydata_influxql::Match::Regex(_) => {
            return Err(Refusal(
                "FROM /regular expression/ is not supported: name one measurement".into(),
            ));
        }
    };
    let columns = columns(s)?;
    let where_ = cond::split(s.condition.as_ref(), ctx.now)?;
    let mut required = BTreeMap::new();
    where_.tags.required(&mut required);
    let dims = s
        .group_by_tags
        .iter()
        .map(|d| match d {
            Dimension::Regex(re) => Ok((d.clone(), Some(cond::regex(re)?))),
            d => Ok((d.clone(), None)),
        })
        .collect::<Result<Vec<_>, Refusal>>()?;
    let tz: Tz = match &s.tz {
        None => Tz::UTC,
        Some(zone) => zone.parse().map_err(|_| {
            Refusal(format!(
                "tz('{zone}') is not a time zone: use an IANA name such as tz('Europe/Copenhagen')"
            ))
        })?,
    };
    let from = match (where_.from, s.group_by_time) {
        (Some(from), _) => from,
        (None, None) => 0,
        (None, Some(_)) => {
            return Err(Refusal(
                "GROUP BY time(…) needs a start: add WHERE time >= now() - 6h (Grafana's $timeFilter does)"
                    .into(),
            ));
        }
    };
    let to = where_.to.unwrap_or(ctx.now.max(from.saturating_add(1)));
    if from >= to {
        return Err(Refusal(
            "the time range is empty: its start is not before its end".into(),
        ));
    }
    Ok(Plan {
        measurement,
        columns,
        where_,
        required,
        dims,
        tz,
        from,
        to,
    })
}

/// Bucket starts and the last bucket's end (`GROUP BY time(width, offset)`), or the range as one bucket.
fn bounds(s: &Select, plan: &Plan) -> Result<Vec<UnixNanos>, Refusal> {
    let Some((width, offset)) = s.group_by_time else {
        return Ok(vec![plan.from, plan.to]);
    };
    // Whole days in a named time zone are calendar days (23 or 25 hours across daylight saving), which is
    // what tz() is for; anything else is a fixed width aligned as InfluxDB aligns it.
    let every = match u32::try_from(width / DAY_NS) {
        Ok(days) if s.tz.is_some() && width % DAY_NS == 0 && days > 0 => Every::Days(days),
        _ => Every::Fixed(width),
    };
    let shifted = bucket_bounds(
        plan.from.saturating_sub(offset),
        plan.to.saturating_sub(offset),
        every,
        plan.tz,
    )
    .map_err(|e| Refusal(e.to_string()))?;
    Ok(shifted
        .into_iter()
        .map(|b| b.saturating_add(offset))
        .collect())
}

async fn aggregated(
    ctx: &Ctx<'_>,
    s: &Select,
    plan: &Plan,
    fields: &[MeasurementName],
    series: &[(usize, SeriesKey)],
    groups: &BTreeMap<BTreeMap<String, String>, usize>,
    group_index: &[usize],
) -> Result<Result<Grouped, Refusal>, crate::Error> {
    let bounds = match bounds(s, plan) {
        Ok(b) => b,
        Err(r) => return Ok(Err(r)),
    };
    let buckets = bounds.len().saturating_sub(1);
    let values = (groups.len() * fields.len()).saturating_mul(buckets) as u64;
    if values > ctx.limits.max_values {
        return Ok(Err(Refusal(format!(
            "this query would answer {values} values ({} series × {buckets} buckets), more than the {} one query \
             may: choose a wider GROUP BY time(…) or a shorter range",
            groups.len(),
            ctx.limits.max_values
        ))));
    }
    let _permit = ctx
        .admit(&Cost {
            series: series.len() as u64,
            groups: Some(groups.len() as u64),
            buckets: Some(buckets as u64),
            raw_points: None,
        })
        .await?;
    // The store folds points into [from, to): the first and last buckets are cut by the range.
    let mut clipped = bounds.clone();
    if let Some(first) = clipped.first_mut() {
        *first = (*first).max(plan.from);
    }
    if let Some(last) = clipped.last_mut() {
        *last = (*last).min(plan.to);
    }
    let mut totals = vec![vec![vec![Partial::default(); buckets]; fields.len()]; groups.len()];
    let order: Vec<usize> = (0..series.len()).collect();
    for chunk in order.chunks(CHUNK) {
        let keys: Vec<SeriesKey> = chunk.iter().map(|i| series[*i].1.clone()).collect();
        let parts = ctx.reader.partials_many(&keys, &clipped).await?;
        for (i, part) in chunk.iter().zip(parts) {
            let field = series[*i].0;
            if let Some(total) = totals
                .get_mut(group_index[*i])
                .and_then(|g| g.get_mut(field))
            {
                for (acc, p) in total.iter_mut().zip(&part) {
                    acc.merge(p);
                }
            }
        }
    }
    let mut out = Vec::with_capacity(groups.len());
    for (tags, g) in groups {
        let rows = (0..buckets)
            .map(|b| {
                let cells = plan
                    .columns
                    .iter()
                    .map(|c| {
                        let field = fields.iter().position(|f| *f == c.field).unwrap_or(0);
                        let p = &totals[*g][field][b];
                        let v = match c.agg {
                            // InfluxDB counts an empty bucket as 0 (but fill(none) still leaves it out).
                            Some(Agg::Fn(AggFn::Count)) => {
                                (p.count > 0 || s.fill != Fill::None).then_some(p.count as f64)
                            }
                            Some(Agg::Fn(f)) => p.finish(f),
                            Some(Agg::Spread) => (p.count > 0).then_some(p.max - p.min),
                            None => None,
                        };
                        v.and_then(|v| eval(&c.expr, v))
                    })
                    .collect();
                (bounds[b], cells)
            })
            .collect();
        out.push((tags.clone(), rows));
    }
    Ok(Ok(out))
}

async fn raw(
    ctx: &Ctx<'_>,
    plan: &Plan,
    fields: &[MeasurementName],
    series: &[(usize, SeriesKey)],
    groups: &BTreeMap<BTreeMap<String, String>, usize>,
    group_index: &[usize],
) -> Result<Result<Grouped, Refusal>, crate::Error> {
    // Rows per group, keyed by time and the series' tags without the field: the fields of one series at one
    // time share a row, as InfluxDB joins them.
    // How many points is not known before reading (bounded by max_raw_points while reading): heavy.
    let _permit = ctx
        .admit(&Cost {
            series: series.len() as u64,
            groups: None,
            buckets: None,
            raw_points: None,
        })
        .await?;
    let mut rows: Vec<Joined> = vec![BTreeMap::new(); groups.len()];
    let mut read: u64 = 0;
    for (i, (field, key)) in series.iter().enumerate() {
        let points = ctx.reader.range(key, plan.from, plan.to).await?;
        read += points.len() as u64;
        if read > ctx.limits.max_raw_points {
            return Ok(Err(Refusal(format!(
                "this query reads more than {} raw points: aggregate it (mean(\"value\") … GROUP BY time(1h)) or \
                 shorten the range",
                ctx.limits.max_raw_points
            ))));
        }
        let Some(group) = rows.get_mut(group_index[i]) else {
            continue;
        };
        for (t, v) in points {
            let row = group
                .entry((t, key.tags.clone()))
                .or_insert_with(|| vec![None; plan.columns.len()]);
            for (c, col) in plan.columns.iter().enumerate() {
                if fields.get(*field) == Some(&col.field) {
                    row[c] = eval(&col.expr, v);
                }
            }
        }
    }
    Ok(Ok(groups
        .iter()
        .map(|(tags, g)| {
            let points = std::mem::take(&mut rows[*g])
                .into_iter()
                .map(|((t, _), cells)| (t, cells))
                .collect();
            (tags.clone(), points)
        })
        .collect()))
}

/// `fill`, order, `LIMIT`/`OFFSET` per series and `SLIMIT`/`SOFFSET` over series: what InfluxDB does after
/// aggregating.
fn finish(s: &Select, groups: Grouped) -> Vec<Series> {
    let planned = columns(s).unwrap_or_default();
    // InfluxDB answers a count as a whole number.
    let counts: Vec<bool> = planned
        .iter()
        .map(|c| c.agg == Some(Agg::Fn(AggFn::Count)) && matches!(c.expr, Expr::Call { .. }))
        .collect();
    let columns: Vec<String> = std::iter::once("time".to_owned())
        .chain(planned.into_iter().map(|c| c.name))
        .collect();
    let name = match s.from.first().map(|f| &f.measurement) {
        Some(bydata_influxql::Match::Name(n)) => n.clone(),
        _ => String::new(),
    };
    let aggregated = s.group_by_time.is_some();
    let mut out: Vec<Series> = groups
        .into_iter()
        .filter_map(|(tags, mut rows)| {
            if aggregated {
                fill(&mut rows, s.fill);
            }
            if s.descending {
                rows.reverse();
            }
            let rows: Vec<Vec<Cell>> = rows
                .into_iter()
                .skip(usize::try_from(s.offset.unwrap_or(0)).unwrap_or(usize::MAX))
                .take(usize::try_from(s.limit.unwrap_or(u64::MAX)).unwrap_or(usize::MAX))
                .map(|(t, cells)| {
                    std::iter::once(Cell::Time(t))
                        .chain(cells.into_iter().zip(&counts).map(|(v, count)| match v {
                            Some(v) if *count => Cell::Int(v as i64),
                            Some(v) => Cell::Num(v),
                            None => Cell::Null,
                        }))
                        .collect()
                })
                .collect();
            // A series without a row is left out, as InfluxDB leaves it out.
            (!rows.is_empty()).then(|| Series {
                name: name.clone(),
                tags: (!s.group_by_tags.is_empty()).then_some(tags),
                columns: columns.clone(),
                values: rows,
            })
        })
        .collect();
    let soffset = usize::try_from(s.soffset.unwrap_or(0)).unwrap_or(usize::MAX);
    out.drain(..soffset.min(out.len()));
    out.truncate(usize::try_from(s.slimit.unwrap_or(u64::MAX)).unwrap_or(usize::MAX));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_aggregates_it_lacks_by_name() {
        for f in [
            "median",
            "percentile",
            "derivative",
            "non_negative_derivative",
            "stddev",
            "mode",
            "distinct",
            "integral",
        ] {
            let e = aggregate(f).expect_err(f);
            assert!(
                e.0.contains(&format!("the function {f}() is not supported")),
                "{}",
                e.0
            );
        }
        assert_eq!(aggregate("MEAN"), Ok(Agg::Fn(AggFn::Mean)));
    }
}
