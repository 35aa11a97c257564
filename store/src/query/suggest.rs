//! What an empty answer says: a query that matches no series still answers (`"series": []`), with a notice
//! that nothing matched and the nearest names that do exist — measurement, field, tag keys and values (the
//! device id is the tag `device`) — by edit distance, so `co22` suggests `co2`.
use crate::Result;
use crate::series::{SeriesFilter, SeriesInfo, SeriesReader};
use bydata_schemas::{SeriesKey, UnixNanos};
use chrono_tz::Tz;
use std::collections::{BTreeMap, BTreeSet};

/// Most names suggested for one part of a query.
const MAX_SUGGESTIONS: usize = 3;

/// The notice for `filter`, which matched no series: what it asked for and, per part that exists nowhere,
/// the nearest names that do. Lists the series the filter's scope sees (only done for empty answers), so
/// no name of another organisation is suggested.
pub async fn nothing_matched(reader: &dyn SeriesReader, filter: &SeriesFilter) -> Result<String> {
    let all = reader
        .series(&SeriesFilter {
            scope: filter.scope.clone(),
            measurement: None,
            field: None,
            tags: BTreeMap::new(),
        })
        .await?;
    Ok(notice(filter, &all))
}

/// Most matched series looked at for [`nothing_in_range`]; beyond, the answer's nulls speak for themselves.
pub(super) const MAX_RANGE_CHECK: usize = 100;

/// When series matched but none holds a point in `[from, to)` (an answer of nulls only): says so, with the
/// newest point before `to`, so a range that misses the data is told apart from a quiet device. `None` when a
/// series has a point in the range, or when more than [`MAX_RANGE_CHECK`] series matched.
pub async fn nothing_in_range(
    reader: &dyn SeriesReader,
    keys: &[SeriesKey],
    (from, to, tz): (UnixNanos, UnixNanos, Tz),
) -> Result<Option<String>> {
    if keys.is_empty() || keys.len() > MAX_RANGE_CHECK {
        return Ok(None);
    }
    let mut newest: Option<UnixNanos> = None;
    for key in keys {
        if reader
            .last_before(key, to)
            .await?
            .is_some_and(|(t, _)| t >= from)
        {
            return Ok(None);
        }
        let latest = reader.last_before(key, UnixNanos::MAX).await?;
        newest = newest.max(latest.map(|(t, _)| t));
    }
    let time = |t| super::time_in(tz, t);
    let matched = match keys.len() {
        1 => "1 series matched".to_owned(),
        n => format!("{n} series matched"),
    };
    let range = format!("from {} to {}", time(from), time(to));
    Ok(Some(match newest {
        Some(t) => format!(
            "{matched}, but none has a point {range}; the newest is at {}: widen from/to",
            time(t)
        ),
        None => format!("{matched}, but none has a point {range}"),
    }))
}

/// The notice, from the store's series.
pub(crate) fn notice(filter: &SeriesFilter, all: &[SeriesInfo]) -> String {
    let mut asked = Vec::new();
    if let Some(m) = &filter.measurement {
        asked.push(format!("measurement={:?}", m.as_str()));
    }
    if let Some(f) = filter.field.as_ref().filter(|f| f.as_str() != "value") {
        asked.push(format!("field={:?}", f.as_str()));
    }
    for (k, v) in &filter.tags {
        let param = if k == "device" {
            "device".to_owned()
        } else {
            format!("tag.{k}")
        };
        asked.push(format!("{param}={v:?}"));
    }
    let mut text = format!("no series matched {}", asked.join(" "));
    if all.is_empty() {
        text.push_str("; the store holds no series yet");
        return text;
    }
    // The series the rest is looked up in: the measurement's, when it exists.
    let mut scope: Vec<&SeriesInfo> = all.iter().collect();
    let measurements: BTreeSet<&str> = all.iter().map(|s| s.key.measurement.as_str()).collect();
    let mut of = String::new();
    if let Some(m) = filter
        .measurement
        .as_ref()
        .filter(|m| measurements.contains(m.as_str()))
    {
        scope.retain(|s| s.key.measurement == *m);
        of = format!(" in {m}");
    }
    // Per part that exists nowhere in scope: the nearest names, or that it does not exist.
    let mut near = Vec::new();
    let mut absent = Vec::new();
    let mut check = |what: &str, wanted: &str, names: BTreeSet<&str>| {
        if names.contains(wanted) {
            return;
        }
        let found = nearest(wanted, names.iter().copied());
        if found.is_empty() {
            absent.push(format!("no {what} {wanted:?}{of}"));
        } else {
            let quoted: Vec<String> = found.iter().map(|n| format!("{n:?}")).collect();
            near.push(format!("{what} {}", quoted.join(" or ")));
        }
    };
    if let Some(m) = &filter.measurement {
        check("measurement", m.as_str(), measurements.clone());
    }
    if let Some(f) = &filter.field {
        check(
            "field",
            f.as_str(),
            scope.iter().map(|s| s.key.field.as_str()).collect(),
        );
    }
    for (k, v) in &filter.tags {
        let keys: BTreeSet<&str> = scope
            .iter()
            .flat_map(|s| s.key.tags.keys().map(String::as_str))
            .collect();
        if !keys.contains(k.as_str()) {
            check("tag key", k, keys);
            continue;
        }
        let what = if k == "device" {
            "device".to_owned()
        } else {
            format!("tag.{k}")
        };
        check(
            &what,
            v,
            scope.iter().filter_map(|s| s.key.tag(k)).collect(),
        );
    }
    if !absent.is_empty() {
        text.push_str("; ");
        text.push_str(&absent.join(", "));
    }
    if near.is_empty() && absent.is_empty() {
        text.push_str("; each part exists, but no series has all of them");
    }
    if near.is_empty() {
        text.push_str("; GET /api/v1/measurements lists what exists");
    } else {
        text.push_str("; did you mean ");
        text.push_str(&near.join(" and "));
        text.push_str("? GET /api/v1/measurements lists what exists");
    }
    text
}

/// The names nearest `wanted` (at most three, nearest first): within an edit distance of a third of its
/// length (at least 1, case ignored), or containing it or contained in it.
pub fn nearest<'a>(wanted: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let w = wanted.to_lowercase();
    let budget = (w.chars().count() / 3).max(1);
    let mut scored: Vec<(usize, &str)> = names
        .into_iter()
        .filter_map(|name| {
            let n = name.to_lowercase();
            let d = distance(&w, &n);
            let contains = w.chars().count() >= 3 && (n.contains(&w) || w.contains(&n));
            (d <= budget || contains).then_some((d, name))
        })
        .collect();
    scored.sort();
    scored.dedup();
    scored
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, n)| n)
        .collect()
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diag + usize::from(ca != *cb))
                .min(above + 1)
                .min(row[j] + 1);
            diag = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use bydata_schemas::{MeasurementName, SeriesKey};

    fn series(m: &str, tags: &[(&str, &str)]) -> SeriesInfo {
        let tags: BTreeMap<String, String> = tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        SeriesInfo {
            key: SeriesKey {
                measurement: MeasurementName::new(m).expect("name"),
                tags,
                field: MeasurementName::new("value").expect("field"),
            },
            unit: None,
        }
    }

    fn filter(m: &str, tags: &[(&str, &str)]) -> SeriesFilter {
        SeriesFilter {
            scope: None,
            measurement: Some(MeasurementName::new(m).expect("name")),
            field: Some(MeasurementName::new("value").expect("field")),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    proptest::proptest! {
        /// Any name a client types and any names the store holds: suggestions come back, never a panic, and
        /// an exact name is always its own nearest.
        #[test]
        fn nearest_never_panics(wanted in ".{0,12}", names in proptest::collection::vec(".{0,12}", 0..8)) {
            let found = nearest(&wanted, names.iter().map(String::as_str));
            proptest::prop_assert!(found.len() <= MAX_SUGGESTIONS);
            if names.contains(&wanted) {
                proptest::prop_assert_eq!(distance(&wanted.to_lowercase(), &found[0].to_lowercase()), 0);
            }
        }
    }

    #[test]
    fn distances() {
        assert_eq!(distance("co22", "co2"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("rådhus", "radhus"), 1);
    }

    #[test]
    fn notices_name_what_was_asked_and_what_is_near() {
        let all = [
            series("co2", &[("device", "dokk1-co2"), ("building", "dokk1")]),
            series("temperature", &[("device", "dokk1-co2")]),
            series(
                "energy_kwh",
                &[("device", "demo-meter-1"), ("building", "b1")],
            ),
        ];
        let cases: [(SeriesFilter, &str); 6] = [
            (
                filter("co22", &[("device", "dokk1-co2")]),
                "no series matched measurement=\"co22\" device=\"dokk1-co2\"; did you mean measurement \"co2\"? GET /api/v1/measurements lists what exists",
            ),
            (
                filter("co2", &[("device", "dokk-co2")]),
                "no series matched measurement=\"co2\" device=\"dokk-co2\"; did you mean device \"dokk1-co2\"? GET /api/v1/measurements lists what exists",
            ),
            (
                filter("energy", &[("building", "b2")]),
                "no series matched measurement=\"energy\" tag.building=\"b2\"; did you mean measurement \"energy_kwh\" and tag.building \"b1\"? GET /api/v1/measurements lists what exists",
            ),
            (
                filter("co2", &[("buliding", "dokk1")]),
                "no series matched measurement=\"co2\" tag.buliding=\"dokk1\"; did you mean tag key \"building\"? GET /api/v1/measurements lists what exists",
            ),
            (
                filter("co2", &[("building", "b1")]),
                "no series matched measurement=\"co2\" tag.building=\"b1\"; no tag.building \"b1\" in co2; GET /api/v1/measurements lists what exists",
            ),
            (
                filter("temperature", &[("building", "dokk1")]),
                "no series matched measurement=\"temperature\" tag.building=\"dokk1\"; no tag key \"building\" in temperature; GET /api/v1/measurements lists what exists",
            ),
        ];
        for (f, want) in cases {
            assert_eq!(notice(&f, &all), want);
        }
        assert_eq!(
            notice(&filter("co2", &[]), &[]),
            "no series matched measurement=\"co2\"; the store holds no series yet"
        );
    }
}
