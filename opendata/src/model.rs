//! What the catalogs (DCAT-AP-DK, data.json) and the CKAN push know about published datasets: plain data,
//! built by the publisher from a dataset's definition and its published files.
use serde::Serialize;

/// Text in Danish and English.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bilingual {
    pub da: String,
    pub en: String,
}

/// A publisher or contact point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Agent {
    pub name: String,
    pub email: Option<String>,
    /// A URI identifying the organisation (e.g. its CVR-based URI or website), when known.
    pub uri: Option<String>,
}

/// The catalog itself: who runs this bydata instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogInfo {
    /// The public base URL, without a trailing slash, e.g. `https://data.aarhus.dk` (all URLs start with it).
    pub base_url: String,
    pub title: Bilingual,
    pub description: Bilingual,
    pub publisher: Agent,
    /// RFC 3339; the latest modification of any dataset, or the catalog's creation.
    pub modified: String,
}

/// The file formats a dataset is published in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Csv,
    Json,
    Geojson,
}

impl FileFormat {
    pub const ALL: [FileFormat; 3] = [FileFormat::Csv, FileFormat::Json, FileFormat::Geojson];

    /// The file extension (also the lower-case name used in URLs).
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Json => "json",
            FileFormat::Geojson => "geojson",
        }
    }

    /// The IANA media type.
    pub fn media_type(self) -> &'static str {
        match self {
            FileFormat::Csv => "text/csv",
            FileFormat::Json => "application/json",
            FileFormat::Geojson => "application/geo+json",
        }
    }

    /// The EU file-type vocabulary code (`http://publications.europa.eu/resource/authority/file-type/{code}`).
    pub fn eu_file_type(self) -> &'static str {
        match self {
            FileFormat::Csv => "CSV",
            FileFormat::Json => "JSON",
            FileFormat::Geojson => "GEOJSON",
        }
    }
}

/// One published file: one period of one dataset in one format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Distribution {
    /// The period the file covers, e.g. `2026-03` (a month) or `2026` (a year).
    pub period: String,
    pub format: FileFormat,
    /// `false` while the period is still running: the file is replaced as data arrives.
    pub complete: bool,
    /// 1, 2, …: a complete period gets a new version only when its bytes change (late data, a re-decode).
    pub version: u32,
    /// The period's current file (always the newest version), e.g. `{base}/opendata/datasets/x/2026-03/x_2026-03.csv`.
    pub access_url: String,
    /// This version's immutable file, e.g. `{base}/opendata/datasets/x/2026-03/v1/x_2026-03.csv`.
    pub download_url: String,
    /// Lower-case hex SHA-256 of the file's bytes: how files are identified everywhere.
    pub sha256: String,
    /// Lower-case hex SHA-1 of the same bytes, only for `spdx:checksum` in DCAT-AP-DK 2.0.2, whose shapes
    /// admit no other algorithm.
    pub sha1: String,
    pub byte_size: u64,
    /// RFC 3339: when this version was first published.
    pub issued: String,
    /// Period start and end (end exclusive), RFC 3339 in the dataset's time zone.
    pub temporal_start: String,
    pub temporal_end: String,
}

/// One dataset as published.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublishedDataset {
    /// The dataset's slug (`a-z 0-9 - _ .`).
    pub id: String,
    pub title: Bilingual,
    pub description: Bilingual,
    pub keywords: Vec<String>,
    /// EU data-theme codes, e.g. `ENER` (`http://publications.europa.eu/resource/authority/data-theme/{code}`).
    pub themes: Vec<String>,
    /// `CC0-1.0` or `CC-BY-4.0` (SPDX ids).
    pub licence: String,
    /// EU frequency code, e.g. `HOURLY`, `DAILY`, `MONTHLY`, `CONT`
    /// (`http://publications.europa.eu/resource/authority/frequency/{code}`).
    pub update_frequency: String,
    pub publisher: Agent,
    pub contact_point: Agent,
    /// A URI of a place (e.g. a DAGI municipality) or a free-text place name.
    pub spatial: Option<String>,
    /// RFC 3339: the covered time.
    pub temporal_start: Option<String>,
    pub temporal_end: Option<String>,
    /// RFC 3339: when the dataset was defined, and when its files last changed.
    pub issued: String,
    pub modified: String,
    /// The dataset's page of files: `{base}/opendata/datasets/{id}`.
    pub landing_page: String,
    /// Bucket width and function, e.g. `1h` / `mean`, for descriptions.
    pub every: String,
    pub aggregation: String,
    /// The unit of the values, if known (e.g. `kWh`).
    pub unit: Option<String>,
    /// Newest first: periods descending, formats in `FileFormat::ALL` order.
    pub distributions: Vec<Distribution>,
}
