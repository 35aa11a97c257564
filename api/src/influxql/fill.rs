//! `fill(…)` after `GROUP BY time(…)`: what an empty bucket shows, done here because the store answers an
//! empty bucket as null and leaves the rest to the caller.
use super::select::Rows;
use bydata_influxql::Fill;

/// Fills empty buckets per column: `null` leaves them, `none` drops rows with no value at all, a number
/// stands in, `previous` repeats the last value, `linear` interpolates between the values around the gap.
pub(super) fn fill(rows: &mut Rows, how: Fill) {
    match how {
        Fill::Null => {}
        Fill::None => rows.retain(|(_, cells)| cells.iter().any(Option::is_some)),
        Fill::Value(x) => rows
            .iter_mut()
            .flat_map(|(_, c)| c.iter_mut())
            .for_each(|v| *v = Some(v.unwrap_or(x))),
        Fill::Previous => {
            let width = rows.first().map_or(0, |r| r.1.len());
            for c in 0..width {
                let mut last = None;
                for (_, cells) in rows.iter_mut() {
                    match cells[c] {
                        Some(v) => last = Some(v),
                        None => cells[c] = last,
                    }
                }
            }
        }
        Fill::Linear => {
            let width = rows.first().map_or(0, |r| r.1.len());
            for c in 0..width {
                let known: Vec<usize> = (0..rows.len())
                    .filter(|i| rows[*i].1[c].is_some())
                    .collect();
                for w in known.windows(2) {
                    let (a, b) = (w[0], w[1]);
                    let (ta, tb) = (rows[a].0 as f64, rows[b].0 as f64);
                    let (va, vb) = (rows[a].1[c].unwrap_or(0.0), rows[b].1[c].unwrap_or(0.0));
                    for row in rows.iter_mut().take(b).skip(a + 1) {
                        let t = row.0 as f64;
                        row.1[c] = Some(va + (vb - va) * (t - ta) / (tb - ta));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_as_influxdb() {
        let rows = || {
            vec![
                (0, vec![None]),
                (10, vec![Some(1.0)]),
                (20, vec![None]),
                (30, vec![Some(3.0)]),
                (40, vec![None]),
            ]
        };
        let values = |how| {
            let mut r = rows();
            fill(&mut r, how);
            r.into_iter().map(|(t, c)| (t, c[0])).collect::<Vec<_>>()
        };
        assert_eq!(values(Fill::None), vec![(10, Some(1.0)), (30, Some(3.0))]);
        assert_eq!(values(Fill::Value(0.0))[0], (0, Some(0.0)));
        assert_eq!(
            values(Fill::Previous),
            vec![
                (0, None),
                (10, Some(1.0)),
                (20, Some(1.0)),
                (30, Some(3.0)),
                (40, Some(3.0))
            ]
        );
        assert_eq!(
            values(Fill::Linear),
            vec![
                (0, None),
                (10, Some(1.0)),
                (20, Some(2.0)),
                (30, Some(3.0)),
                (40, None)
            ]
        );
        assert_eq!(values(Fill::Null)[2], (20, None));
    }
}
