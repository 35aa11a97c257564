//! `WHERE` conditions: the time range taken out of the top-level `AND`s, and what remains checked against each
//! series' tags (`=`, `!=`, `=~`, `!~`, `AND`, `OR`, parentheses). Conditions on field values are refused by
//! name: the store selects series by tags and points by time only.
use super::Refusal;
use bydata_influxql::{Expr, Op};
use bydata_schemas::{SeriesKey, UnixNanos, parse_rfc3339};
use regex_automata::dfa::{dense, regex::Regex};
use regex_automata::util::syntax;
use std::collections::BTreeMap;

/// A condition on tags, ready to check against series keys (regular expressions compiled once).
#[derive(Debug)]
pub(crate) enum TagCond {
    True,
    And(Box<TagCond>, Box<TagCond>),
    Or(Box<TagCond>, Box<TagCond>),
    Eq {
        key: String,
        value: String,
        negate: bool,
    },
    Matches {
        key: String,
        re: Box<Regex>,
        negate: bool,
    },
}

impl TagCond {
    /// Whether a series with these tags meets the condition (a missing tag reads as the empty string, as in
    /// InfluxDB).
    pub(crate) fn matches(&self, tags: &BTreeMap<String, String>) -> bool {
        let get = |k: &str| tags.get(k).map_or("", String::as_str);
        match self {
            TagCond::True => true,
            TagCond::And(a, b) => a.matches(tags) && b.matches(tags),
            TagCond::Or(a, b) => a.matches(tags) || b.matches(tags),
            TagCond::Eq { key, value, negate } => (get(key) == value) != *negate,
            TagCond::Matches { key, re, negate } => re.is_match(get(key)) != *negate,
        }
    }

    /// The tags that must equal a value for the whole condition to hold: what the store can narrow by.
    pub(crate) fn required(&self, out: &mut BTreeMap<String, String>) {
        match self {
            TagCond::And(a, b) => {
                a.required(out);
                b.required(out);
            }
            TagCond::Eq {
                key,
                value,
                negate: false,
            } if !value.is_empty() => {
                out.insert(key.clone(), value.clone());
            }
            _ => {}
        }
    }

    pub(crate) fn key_matches(&self, key: &SeriesKey) -> bool {
        self.matches(&key.tags)
    }
}

/// A regular expression as InfluxDB reads them (RE2 syntax, unanchored), built with bounded memory. Case
/// folding (`(?i)`, which Grafana's measurement search sends) needs Unicode tables bydata does not build, so a
/// pattern that needs them is read again with ASCII semantics (`(?i)` then folds A–Z only).
pub(crate) fn regex(pattern: &str) -> Result<Regex, Refusal> {
    let build = |syntax: syntax::Config| {
        Regex::builder()
            .syntax(syntax)
            .dense(
                dense::Config::new()
                    .dfa_size_limit(Some(4 << 20))
                    .determinize_size_limit(Some(4 << 20)),
            )
            .build(pattern)
            .ok()
    };
    build(syntax::Config::new())
        .or_else(|| build(syntax::Config::new().unicode(false).utf8(false)))
        .ok_or_else(|| {
            Refusal(format!(
                "/{pattern}/ is not a regular expression bydata can use (RE2 syntax, as InfluxDB; at most a few \
                 MB once compiled)"
            ))
        })
}

/// `WHERE` split into its time range `[from, to)` (each end if given) and its tag condition.
#[derive(Debug)]
pub(crate) struct Where {
    pub(crate) from: Option<UnixNanos>,
    pub(crate) to: Option<UnixNanos>,
    pub(crate) tags: TagCond,
}

pub(crate) fn split(cond: Option<&Expr>, now: UnixNanos) -> Result<Where, Refusal> {
    let mut w = Where {
        from: None,
        to: None,
        tags: TagCond::True,
    };
    if let Some(cond) = cond {
        w.tags = conjunct(cond, now, &mut w.from, &mut w.to)?;
    }
    if let (Some(from), Some(to)) = (w.from, w.to)
        && from >= to
    {
        return Err(Refusal(
            "the time range is empty: the condition on time asks for an end before its start"
                .into(),
        ));
    }
    Ok(w)
}

fn is_time(e: &Expr) -> bool {
    matches!(e, Expr::Ident { name, .. } if name.eq_ignore_ascii_case("time"))
}

/// One part of the top-level `AND`s: time conditions narrow the range, the rest becomes the tag condition.
fn conjunct(
    e: &Expr,
    now: UnixNanos,
    from: &mut Option<UnixNanos>,
    to: &mut Option<UnixNanos>,
) -> Result<TagCond, Refusal> {
    let Expr::Binary { op, lhs, rhs } = e else {
        return Err(Refusal(format!(
            "the condition {} is not a comparison: compare a tag (\"building\" = 'b1') or time",
            shown(e)
        )));
    };
    match op {
        Op::And => {
            let a = conjunct(lhs, now, from, to)?;
            let b = conjunct(rhs, now, from, to)?;
            Ok(match (a, b) {
                (TagCond::True, x) | (x, TagCond::True) => x,
                (a, b) => TagCond::And(Box::new(a), Box::new(b)),
            })
        }
        _ if is_time(lhs) || is_time(rhs) => {
            let (op, t) = if is_time(lhs) {
                (*op, time_value(rhs, now)?)
            } else {
                (flip(*op), time_value(lhs, now)?)
            };
            let bound = |f: &mut Option<UnixNanos>, v: UnixNanos, later: bool| {
                *f = Some(match *f {
                    Some(old) if later => old.max(v),
                    Some(old) => old.min(v),
                    None => v,
                });
            };
            match op {
                Op::GtEq => bound(from, t, true),
                Op::Gt => bound(from, t.saturating_add(1), true),
                Op::Lt => bound(to, t, false),
                Op::LtEq => bound(to, t.saturating_add(1), false),
                Op::Eq => {
                    bound(from, t, true);
                    bound(to, t.saturating_add(1), false);
                }
                _ => {
                    return Err(Refusal(format!(
                        "time can be compared with >=, >, <=, < or =, not {}",
                        op.as_str()
                    )));
                }
            }
            Ok(TagCond::True)
        }
        _ => tags(e),
    }
}

fn flip(op: Op) -> Op {
    match op {
        Op::Gt => Op::Lt,
        Op::GtEq => Op::LtEq,
        Op::Lt => Op::Gt,
        Op::LtEq => Op::GtEq,
        other => other,
    }
}

/// A condition on tags only (time may appear only in the top-level `AND`s, as in InfluxDB).
fn tags(e: &Expr) -> Result<TagCond, Refusal> {
    let Expr::Binary { op, lhs, rhs } = e else {
        return Err(Refusal(format!(
            "the condition {} is not a comparison: compare a tag (\"building\" = 'b1') or time",
            shown(e)
        )));
    };
    match op {
        Op::And => Ok(TagCond::And(Box::new(tags(lhs)?), Box::new(tags(rhs)?))),
        Op::Or => Ok(TagCond::Or(Box::new(tags(lhs)?), Box::new(tags(rhs)?))),
        _ if is_time(lhs) || is_time(rhs) => Err(Refusal(
            "a condition on time must stand on its own, joined by AND (time >= … AND time <= …), not inside OR"
                .into(),
        )),
        Op::Eq | Op::NotEq | Op::Regex | Op::NotRegex => {
            let Expr::Ident { name, hint } = lhs.as_ref() else {
                return Err(Refusal(format!(
                    "the condition {} must name a tag on its left",
                    shown(e)
                )));
            };
            if hint.as_deref().is_some_and(|h| h.eq_ignore_ascii_case("field")) {
                return Err(field_refusal(name));
            }
            let negate = matches!(op, Op::NotEq | Op::NotRegex);
            match rhs.as_ref() {
                Expr::Regex(re) => Ok(TagCond::Matches {
                    key: name.clone(),
                    re: Box::new(regex(re)?),
                    negate,
                }),
                Expr::Str(s) => Ok(TagCond::Eq {
                    key: name.clone(),
                    value: s.clone(),
                    negate,
                }),
                // Grafana's "Is" operator leaves numbers and booleans unquoted: tags are text, compare as such.
                Expr::Int(n) => Ok(TagCond::Eq {
                    key: name.clone(),
                    value: n.to_string(),
                    negate,
                }),
                Expr::Bool(b) => Ok(TagCond::Eq {
                    key: name.clone(),
                    value: b.to_string(),
                    negate,
                }),
                other => Err(Refusal(format!(
                    "the tag {name} is compared with {}: compare it with a 'quoted value' or a /regular expression/",
                    shown(other)
                ))),
            }
        }
        _ => match lhs.as_ref() {
            Expr::Ident { name, .. } => Err(field_refusal(name)),
            _ => Err(Refusal(format!(
                "the condition {} is not supported: compare a tag with =, !=, =~ or !~",
                shown(e)
            ))),
        },
    }
}

fn field_refusal(name: &str) -> Refusal {
    Refusal(format!(
        "conditions on field values ({name} > …) are not supported: bydata selects by tags and time; filter \
         the values in Grafana (a transformation) instead"
    ))
}

/// A point in time: `1596240000000ms` (a duration since the epoch), a bare integer (nanoseconds), an RFC 3339
/// string, `now()`, and sums and differences of these with durations.
fn time_value(e: &Expr, now: UnixNanos) -> Result<UnixNanos, Refusal> {
    match e {
        Expr::Duration(ns) | Expr::Int(ns) => Ok(*ns),
        Expr::Str(s) => parse_rfc3339(s).map_err(|_| {
            Refusal(format!(
                "'{s}' is not a time: use RFC 3339 ('2026-11-22T12:00:00Z'), epoch milliseconds (1700000000000ms) or now() - 1h"
            ))
        }),
        Expr::Call { name, args } if name.eq_ignore_ascii_case("now") && args.is_empty() => Ok(now),
        Expr::Binary {
            op: op @ (Op::Add | Op::Sub),
            lhs,
            rhs,
        } => {
            let a = time_value(lhs, now)?;
            let b = time_value(rhs, now)?;
            let v = if *op == Op::Add {
                a.checked_add(b)
            } else {
                a.checked_sub(b)
            };
            v.ok_or_else(|| Refusal("the time in the condition is out of range".into()))
        }
        other => Err(Refusal(format!(
            "{} is not a time: use epoch milliseconds (1700000000000ms), RFC 3339 in quotes or now() - 1h",
            shown(other)
        ))),
    }
}

/// An expression as the user wrote it, near enough for a message.
pub(crate) fn shown(e: &Expr) -> String {
    match e {
        Expr::Ident { name, .. } => format!("\"{name}\""),
        Expr::Str(s) => format!("'{s}'"),
        Expr::Regex(r) => format!("/{r}/"),
        Expr::Int(n) => n.to_string(),
        Expr::Float(x) => x.to_string(),
        Expr::Bool(b) => b.to_string(),
        Expr::Duration(d) => format!("{d}ns"),
        Expr::Wildcard => "*".into(),
        Expr::Call { name, args } => format!(
            "{name}({})",
            args.iter().map(shown).collect::<Vec<_>>().join(", ")
        ),
        Expr::Binary { op, lhs, rhs } => format!("{} {} {}", shown(lhs), op.as_str(), shown(rhs)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(q: &str) -> Expr {
        let s =
            bydata_influxql::parse(&format!("SELECT mean(value) FROM m WHERE {q}")).expect("parse");
        match s.into_iter().next() {
            Some(bydata_influxql::Statement::Select(s)) => s.condition.expect("condition"),
            _ => panic!("select"),
        }
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn splits_time_from_tags() {
        let now = 10_000_000_000;
        let w = split(
            Some(&cond(
                r#"("building" = 'b1' OR "building" =~ /^b[23]$/) AND time >= 1000ms and time <= 2000ms AND "device" != 'x'"#,
            )),
            now,
        )
        .expect("split");
        assert_eq!((w.from, w.to), (Some(1_000_000_000), Some(2_000_000_001)));
        assert!(
            w.tags
                .matches(&tags(&[("building", "b3"), ("device", "y")]))
        );
        assert!(
            !w.tags
                .matches(&tags(&[("building", "b3"), ("device", "x")]))
        );
        assert!(!w.tags.matches(&tags(&[("building", "b4")])));
        let w = split(Some(&cond(r#""m" =~ /(?i)ENERG/"#)), now).expect("split");
        assert!(w.tags.matches(&tags(&[("m", "energy_kwh")])));
        let w = split(Some(&cond("time > now() - 1s")), now).expect("split");
        assert_eq!((w.from, w.to), (Some(9_000_000_001), None));
        let mut req = BTreeMap::new();
        split(Some(&cond(r#""a" = 'x' AND "b" =~ /y/ AND time > 0"#)), now)
            .expect("split")
            .tags
            .required(&mut req);
        assert_eq!(req, tags(&[("a", "x")]));
    }

    #[test]
    fn refuses_what_the_store_cannot_do() {
        for (q, says) in [
            ("value > 5", "conditions on field values"),
            (r#""value"::field = 'x'"#, "conditions on field values"),
            ("time > 0 OR a = 'b'", "not inside OR"),
            ("time > 'yesterday'", "is not a time"),
            (
                "time >= 2000ms AND time < 1000ms",
                "the time range is empty",
            ),
            ("a =~ /(/", "is not a regular expression"),
            ("a =~ /[/", "is not a regular expression"),
            ("a = 1.5", "compare it with a 'quoted value'"),
        ] {
            let e = split(Some(&cond(q)), 0).expect_err(q);
            assert!(e.0.contains(says), "{q}: {}", e.0);
        }
    }
}
