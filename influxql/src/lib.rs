//! InfluxQL, the query language of InfluxDB 1.x, as far as Grafana's built-in InfluxDB data source speaks it:
//! `SELECT` with aggregates, tag conditions, a time range, `GROUP BY time(…)` and tags, `fill`, `ORDER BY time`,
//! `LIMIT`/`SLIMIT`, `tz`, and the `SHOW` statements of its query builder. Text in, `Statement`s out; pure (no
//! I/O, no clock: `now()` stays an expression for the caller).
//!
//! Our own parser rather than a crate: the one maintained Rust InfluxQL parser (`influxdb_influxql_parser`, in
//! InfluxDB 3's repository) is not published on crates.io, and what is published (`rinfluxdb-influxql`)
//! builds queries instead of parsing them. Outside text never panics this parser (property-tested below):
//! nesting and operator counts are bounded, and every refusal says what was found, what was expected and at
//! which character, or names the statement or clause bydata does not answer.
mod ast;
mod error;
mod lex;
mod parse;

pub use ast::*;
pub use error::{Error, Result};

/// Parses one or more statements separated by `;`.
pub fn parse(query: &str) -> Result<Vec<Statement>> {
    parse::Parser::new(query).statements()
}

#[cfg(test)]
mod tests;
