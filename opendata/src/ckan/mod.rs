//! CKAN push: publish one [`PublishedDataset`] to a CKAN site (Open Data DK runs CKAN 2.11) through the
//! Action API, idempotently: a second push of the same dataset only reads.
//!
//! [`Ckan::push`] reads the package (`package_show`), creates it with all its resources inline when missing
//! (one request, so a half-created package never exists), otherwise patches only the package fields that
//! differ (`package_patch`), then reconciles resources one per [`Distribution`]: `resource_create` for missing
//! ones, `resource_patch` for changed ones, `resource_delete` for resources *we* created (they carry a
//! `bydata_key`) whose distribution is gone; resources added by hand (no `bydata_key`) are never touched.
//!
//! Requests are retried on connect errors, timeouts, HTTP 5xx and 429 (honouring `Retry-After`), never on
//! other 4xx. A create whose response is lost is not simply re-sent: `package_show` first checks whether it
//! happened, so a retry never duplicates a resource.
//!
//! Decisions, and the documents behind them:
//! - Names: [`package_name`] is the dataset id itself (`.` becomes `-`), no `bydata-` prefix, so the portal URL
//!   reads like ours. Two ids differing only in `.`/`-` would collide; the `bydata_id` extra detects that
//!   ([`CkanError::NameTaken`]) instead of overwriting the other dataset.
//! - Licences: CKAN's default licence list (`ckan/model/license.py`): `CC0-1.0` → `cc-zero`, `CC-BY-4.0` →
//!   `cc-by` (the default list has no versioned CC-BY). A site with its own list needs the same ids.
//! - Extras use ckanext-dcat's key names (`frequency`, `theme` as a JSON list of URIs, `temporal_start`,
//!   `spatial_uri`, `issued`, …; `ckanext/dcat/profiles/euro_dcat_ap_base.py`) so a DCAT export of the portal
//!   maps them; other extras on the package are kept when we patch ours.
//! - Resource `hash` is the bare hex digest with `hash_algorithm` = the SPDX sha256 URI: core CKAN treats
//!   `hash` as free text, and ckanext-dcat exports the pair as `spdx:checksum`.
//! - `last_modified` is sent as naive UTC `YYYY-MM-DDTHH:MM:SS`: CKAN stores it in a `timestamp without
//!   time zone` column and returns `datetime.isoformat()` of it, so that form compares equal on the next push.
//! - Authorization: the raw API token in the `Authorization` header (CKAN 2.10+ tokens).
//!
//! Sources: the CKAN 2.11 API guide <https://docs.ckan.org/en/2.11/api/> (request/response envelope,
//! `Authorization` header, `ckan.logic.action.create.package_create`/`resource_create`,
//! `ckan.logic.action.patch.package_patch`/`resource_patch`, `ckan.logic.action.delete.resource_delete`), and
//! the ckan-2.11.5 source: `ckan/views/api.py` (error `__type` ↔ HTTP 403/404/409), `ckan/logic/schema.py`
//! (`default_resource_schema` keeps extra keys, `isodate` fields), `ckan/logic/validators.py`
//! (`name_validator`, `tag_name_validator`), `ckan/model/license.py`.
//!
//! Files: `client` (the client and its settings), `push` (a push and a withdrawal), `config` (target and retry policy), `report` (what a push reports, or why it failed), `names`
//! (CKAN's spellings of names, tags, licences and times), `package` and `resource` (what we want on the site
//! and how it differs from what is there), `session` (one push's requests, retries and answers), `json`.
//!
//! [`Distribution`]: crate::model::Distribution
//! [`PublishedDataset`]: crate::model::PublishedDataset
mod client;
mod config;
mod json;
mod names;
mod package;
mod push;
mod report;
mod resource;
mod session;

pub use client::Ckan;
pub use config::{CkanTarget, RetryPolicy};
pub use names::{license_id, package_name};
pub use report::{CkanError, PackageOutcome, PushReport};
