//! Entry points for the fuzz targets under `fuzz/` (not an API: hidden from the docs, kept this small so the
//! internals they reach stay private). Line-protocol bodies are fuzzed in `ingest::line_protocol`, where
//! they are read.
use bydata_schemas::UnixNanos;
use bydata_store::query::Query;
use std::collections::HashMap;

/// The query string of `GET /api/v1/query` as the handler reads it (a repeated key keeps its last value, as
/// axum's `Query<HashMap>` does), turned into the store query or the 400 the client would get.
#[doc(hidden)]
pub fn query_params(pairs: &[(String, String)], now: UnixNanos) -> Result<Query, crate::Error> {
    let params: HashMap<String, String> = pairs.iter().cloned().collect();
    bydata_store::query::params::parse(&params, now)
        .map(|(query, _format)| query)
        .map_err(crate::Error::from)
}
