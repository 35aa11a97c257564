//! The CKAN push against a fake CKAN over real TCP: an axum server speaking the Action API's request and
//! response shapes (CKAN 2.11), in-memory, recording every request and failing on cue.
//! `live_ckan_push` pushes to a real site when `BYDATA_TEST_CKAN_URL` (and `_TOKEN`, `_ORG`) are set.

use axum::http::Method;
use bydata_opendata::ckan::{
    Ckan, CkanError, CkanTarget, PackageOutcome, PushReport, RetryPolicy, license_id, package_name,
};
use bydata_opendata::model::{Agent, Bilingual, Distribution, FileFormat, PublishedDataset};
use proptest::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

mod fake_ckan;

use fake_ckan::*;

// ---------------------------------------------------------------------------------------------------------
// Fixtures

fn distribution(period: &str, format: FileFormat, version: u32, sha: char) -> Distribution {
    let ext = format.extension();
    let base = "https://data.aarhus.dk/opendata/datasets/energy.hourly";
    Distribution {
        period: period.into(),
        format,
        complete: period != "2026-03",
        version,
        access_url: format!("{base}/{period}/energy.hourly_{period}.{ext}"),
        download_url: format!("{base}/{period}/v{version}/energy.hourly_{period}.{ext}"),
        sha256: sha.to_string().repeat(64),
        sha1: sha.to_string().repeat(40),
        byte_size: 1000 + u64::from(version),
        issued: "2026-03-01T00:00:00+01:00".into(),
        temporal_start: format!("{period}-01T00:00:00+01:00"),
        temporal_end: "2026-04-01T00:00:00+02:00".into(),
    }
}

fn dataset() -> PublishedDataset {
    let distributions = ["2026-03", "2026-02"]
        .into_iter()
        .flat_map(|p| FileFormat::ALL.map(|f| distribution(p, f, 1, 'a')))
        .collect();
    PublishedDataset {
        id: "energy.hourly".into(),
        title: Bilingual {
            da: "Energiforbrug pr. time".into(),
            en: "Hourly energy use".into(),
        },
        description: Bilingual {
            da: "Målt forbrug i kommunens bygninger.".into(),
            en: "Metered use in municipal buildings.".into(),
        },
        keywords: vec!["energi".into(), "el/forbrug".into(), "x".into()],
        themes: vec!["ENER".into()],
        licence: "CC-BY-4.0".into(),
        update_frequency: "HOURLY".into(),
        publisher: Agent {
            name: "Aarhus Kommune".into(),
            email: None,
            uri: Some("https://www.aarhus.dk".into()),
        },
        contact_point: Agent {
            name: "Data-teamet".into(),
            email: Some("data@aarhus.dk".into()),
            uri: None,
        },
        spatial: Some("https://api.dataforsyningen.dk/kommuner/0751".into()),
        temporal_start: Some("2026-02-01T00:00:00+01:00".into()),
        temporal_end: None,
        issued: "2026-02-01T00:00:00+01:00".into(),
        modified: "2026-03-01T00:00:00+01:00".into(),
        landing_page: "https://data.aarhus.dk/opendata/datasets/energy.hourly".into(),
        every: "1h".into(),
        aggregation: "mean".into(),
        unit: Some("kWh".into()),
        distributions,
    }
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        first_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(20),
    }
}

fn client(url: &str, token: &str, org: &str) -> Ckan {
    let target = CkanTarget {
        url: url.into(),
        token: token.into(),
        owner_org: org.into(),
    };
    Ckan::new(target)
        .expect("client")
        .with_retry_policy(fast())
        .with_timeout(Duration::from_secs(5))
}

async fn setup() -> (Fake, Ckan) {
    let (fake, url) = Fake::start().await;
    (fake, client(&url, TOKEN, ORG))
}

fn report(
    package: PackageOutcome,
    created: usize,
    updated: usize,
    unchanged: usize,
    deleted: usize,
) -> (PackageOutcome, [usize; 4]) {
    (package, [created, updated, unchanged, deleted])
}

fn summary(r: &PushReport) -> (PackageOutcome, [usize; 4]) {
    (
        r.package,
        [
            r.resources_created,
            r.resources_updated,
            r.resources_unchanged,
            r.resources_deleted,
        ],
    )
}

// ---------------------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn first_push_creates_everything_and_a_second_push_only_reads() {
    let (fake, ckan) = setup().await;
    let first = ckan.push(&dataset()).await.expect("first push");
    assert_eq!(summary(&first), report(PackageOutcome::Created, 6, 0, 0, 0));
    assert_eq!(first.attempts, 2);
    assert_eq!(fake.actions(), ["package_show", "package_create"]);
    let stored = fake
        .package("energy-hourly")
        .expect("package stored under the id");
    assert_eq!(first.package_id, stored["id"]);
    assert_eq!(stored["resources"].as_array().map(Vec::len), Some(6));

    fake.clear_log();
    let second = ckan.push(&dataset()).await.expect("second push");
    assert_eq!(
        summary(&second),
        report(PackageOutcome::Unchanged, 0, 0, 6, 0)
    );
    assert_eq!(second.attempts, 1);
    assert!(fake.writes().is_empty(), "writes: {:?}", fake.actions());
    assert_eq!(second.package_id, first.package_id);

    let json = serde_json::to_value(&second).expect("serialize");
    assert_eq!(json["package"], "unchanged");
}

#[tokio::test]
async fn request_bodies_follow_the_action_api() {
    let (fake, ckan) = setup().await;
    ckan.push(&dataset()).await.expect("push");
    let log = fake.log();
    assert!(
        log.iter()
            .all(|r| r.authorization.as_deref() == Some(TOKEN)),
        "raw token, no Bearer"
    );

    let show = &log[0];
    assert_eq!(
        (show.method.clone(), show.query_id.as_deref()),
        (Method::GET, Some("energy-hourly"))
    );

    let create = &log[1];
    assert_eq!(create.method, Method::POST);
    let b = &create.body;
    assert_eq!(b["name"], "energy-hourly");
    assert_eq!(b["title"], "Energiforbrug pr. time");
    assert_eq!(b["owner_org"], ORG);
    assert_eq!(b["license_id"], "cc-by");
    assert_eq!(
        b["url"],
        "https://data.aarhus.dk/opendata/datasets/energy.hourly"
    );
    assert_eq!(
        (b["maintainer"].as_str(), b["maintainer_email"].as_str()),
        (Some("Data-teamet"), Some("data@aarhus.dk"))
    );
    assert_eq!(
        (b["author"].as_str(), b["author_email"].as_str()),
        (Some("Aarhus Kommune"), Some(""))
    );
    assert_eq!(b["private"], false);
    let notes = b["notes"].as_str().expect("notes");
    assert!(
        notes.starts_with("Målt forbrug")
            && notes.contains("Hourly energy use")
            && notes.contains("Metered use")
    );
    assert_eq!(
        b["tags"],
        json!([{"name": "el forbrug"}, {"name": "energi"}]),
        "sanitised, too-short dropped"
    );
    let extras: BTreeMap<&str, &str> = b["extras"]
        .as_array()
        .expect("extras")
        .iter()
        .map(|e| {
            (
                e["key"].as_str().expect("key"),
                e["value"].as_str().expect("string value"),
            )
        })
        .collect();
    assert_eq!(extras["bydata_id"], "energy.hourly");
    assert_eq!(extras["title_en"], "Hourly energy use");
    assert_eq!(
        extras["frequency"],
        "http://publications.europa.eu/resource/authority/frequency/HOURLY"
    );
    assert_eq!(
        extras["theme"],
        r#"["http://publications.europa.eu/resource/authority/data-theme/ENER"]"#
    );
    assert_eq!(
        extras["spatial_uri"],
        "https://api.dataforsyningen.dk/kommuner/0751"
    );
    assert_eq!(extras["temporal_start"], "2026-02-01T00:00:00+01:00");
    assert!(!extras.contains_key("temporal_end"));

    let resources = b["resources"].as_array().expect("inline resources");
    assert_eq!(resources.len(), 6);
    let r = &resources[0];
    let d = &dataset().distributions[0];
    assert_eq!(r["bydata_key"], "2026-03.csv");
    assert_eq!(r["name"], "2026-03 (CSV)");
    assert_eq!(r["url"], d.access_url.as_str());
    assert_eq!(
        (r["format"].as_str(), r["mimetype"].as_str()),
        (Some("CSV"), Some("text/csv"))
    );
    assert_eq!(r["hash"], d.sha256.as_str());
    assert_eq!(
        r["hash_algorithm"],
        "http://spdx.org/rdf/terms#checksumAlgorithm_sha256"
    );
    assert_eq!(r["size"], 1001);
    assert_eq!(r["last_modified"], "2026-02-28T23:00:00", "naive UTC");
    let description = r["description"].as_str().expect("description");
    assert!(
        description.contains(&d.download_url) && description.contains("running"),
        "{description}"
    );
    assert_eq!(resources[5]["name"], "2026-02 (GeoJSON)");
    assert_eq!(resources[5]["format"], "GeoJSON");
}

#[tokio::test]
async fn changes_are_patched_field_by_field() {
    let (fake, ckan) = setup().await;
    ckan.push(&dataset()).await.expect("create");

    // A late file: new bytes and version for one distribution.
    let mut ds = dataset();
    ds.distributions[4] = distribution("2026-02", FileFormat::Json, 2, 'b');
    fake.clear_log();
    let r = ckan.push(&ds).await.expect("new version");
    assert_eq!(summary(&r), report(PackageOutcome::Unchanged, 0, 1, 5, 0));
    let patches = fake.calls("resource_patch");
    assert_eq!(fake.writes().len(), 1);
    let body = patches[0].body.as_object().expect("object");
    assert!(body["id"].as_str().is_some_and(|id| id.starts_with("res-")));
    assert_eq!(body["hash"], "b".repeat(64));
    assert!(
        body["description"]
            .as_str()
            .is_some_and(|d| d.contains("version 2"))
    );
    assert!(
        !body.contains_key("name") && !body.contains_key("format"),
        "only changed fields: {body:?}"
    );

    // A new period.
    ds.distributions
        .insert(0, distribution("2026-04", FileFormat::Csv, 1, 'c'));
    fake.clear_log();
    let r = ckan.push(&ds).await.expect("new period");
    assert_eq!(summary(&r), report(PackageOutcome::Unchanged, 1, 0, 6, 0));
    let creates = fake.calls("resource_create");
    assert_eq!((creates.len(), fake.writes().len()), (1, 1));
    assert_eq!(creates[0].body["package_id"], r.package_id.as_str());
    assert_eq!(creates[0].body["bydata_key"], "2026-04.csv");

    // A new title.
    ds.title.da = "Elforbrug pr. time".into();
    fake.clear_log();
    let r = ckan.push(&ds).await.expect("new title");
    assert_eq!(summary(&r), report(PackageOutcome::Updated, 0, 0, 7, 0));
    let patches = fake.calls("package_patch");
    assert_eq!((patches.len(), fake.writes().len()), (1, 1));
    let body = patches[0].body.as_object().expect("object");
    let keys: Vec<&str> = body.keys().map(String::as_str).collect();
    assert_eq!(keys, ["id", "title"]);
    assert_eq!(body["id"], r.package_id.as_str());

    fake.clear_log();
    let r = ckan.push(&ds).await.expect("again");
    assert_eq!(summary(&r), report(PackageOutcome::Unchanged, 0, 0, 7, 0));
    assert!(fake.writes().is_empty());
}

#[tokio::test]
async fn our_extras_are_patched_and_the_portals_own_are_kept() {
    let (fake, ckan) = setup().await;
    ckan.push(&dataset()).await.expect("create");
    {
        let mut s = fake.0.lock().expect("lock");
        let package = s.packages.get_mut("energy-hourly").expect("package");
        package["extras"]
            .as_array_mut()
            .expect("extras")
            .push(json!({"key": "portal_note", "value": "kept"}));
    }
    let mut ds = dataset();
    ds.update_frequency = "DAILY".into();
    fake.clear_log();
    let r = ckan.push(&ds).await.expect("push");
    assert_eq!(r.package, PackageOutcome::Updated);
    let patch = &fake.calls("package_patch")[0].body;
    let extras = patch["extras"].as_array().expect("extras");
    assert!(extras.contains(&json!({"key": "portal_note", "value": "kept"})));
    assert!(extras.contains(&json!({"key": "frequency", "value": "http://publications.europa.eu/resource/authority/frequency/DAILY"})));
    assert_eq!(extras.iter().filter(|e| e["key"] == "frequency").count(), 1);
}

#[tokio::test]
async fn only_our_resources_are_deleted() {
    let (fake, ckan) = setup().await;
    ckan.push(&dataset()).await.expect("create");
    fake.add_resource(
        "energy-hourly",
        json!({"name": "Dokumentation", "url": "https://example.org/doc.pdf", "format": "PDF"}),
    );
    let mut ds = dataset();
    ds.distributions.truncate(3); // 2026-02 is no longer published
    fake.clear_log();
    let r = ckan.push(&ds).await.expect("push");
    assert_eq!(summary(&r), report(PackageOutcome::Unchanged, 0, 0, 3, 3));
    assert_eq!(fake.calls("resource_delete").len(), 3);
    let resources = fake.package("energy-hourly").expect("package")["resources"].clone();
    let names: Vec<&str> = resources
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "2026-03 (CSV)",
            "2026-03 (JSON)",
            "2026-03 (GeoJSON)",
            "Dokumentation"
        ]
    );
}

#[tokio::test]
async fn a_resource_without_key_is_adopted_by_url() {
    let (fake, ckan) = setup().await;
    let mut ds = dataset();
    ds.distributions.truncate(1);
    ckan.push(&ds).await.expect("create");
    {
        let mut s = fake.0.lock().expect("lock");
        let package = s.packages.get_mut("energy-hourly").expect("package");
        package["resources"][0]
            .as_object_mut()
            .expect("resource")
            .remove("bydata_key");
    }
    fake.clear_log();
    let r = ckan.push(&ds).await.expect("push");
    assert_eq!(summary(&r), report(PackageOutcome::Unchanged, 0, 1, 0, 0));
    let patch = &fake.calls("resource_patch")[0].body;
    assert_eq!(patch["bydata_key"], "2026-03.csv");
    assert!(fake.calls("resource_create").is_empty());
}

#[tokio::test]
async fn transient_503s_are_retried() {
    let (fake, ckan) = setup().await;
    fake.fail("package_show", &[Fault::Status(503), Fault::Status(503)]);
    let r = ckan.push(&dataset()).await.expect("push");
    assert_eq!(r.package, PackageOutcome::Created);
    assert_eq!(r.attempts, 4, "3 package_show + 1 package_create");
    assert_eq!(
        fake.actions(),
        [
            "package_show",
            "package_show",
            "package_show",
            "package_create"
        ]
    );
}

#[tokio::test]
async fn a_lost_package_create_response_does_not_duplicate() {
    let (fake, ckan) = setup().await;
    fake.fail("package_create", &[Fault::AfterCommit(502)]);
    let r = ckan.push(&dataset()).await.expect("push");
    assert_eq!(summary(&r), report(PackageOutcome::Created, 6, 0, 0, 0));
    assert_eq!(
        fake.actions(),
        ["package_show", "package_create", "package_show"]
    );
    assert_eq!(fake.package_count(), 1);
    assert_eq!(
        fake.package("energy-hourly").expect("package")["resources"]
            .as_array()
            .map(Vec::len),
        Some(6)
    );
    let again = ckan.push(&dataset()).await.expect("again");
    assert_eq!(
        summary(&again),
        report(PackageOutcome::Unchanged, 0, 0, 6, 0)
    );
}

#[tokio::test]
async fn a_timed_out_resource_create_does_not_duplicate() {
    let (fake, url) = Fake::start().await;
    let ckan = client(&url, TOKEN, ORG).with_timeout(Duration::from_millis(150));
    let mut ds = dataset();
    let last = ds.distributions.pop().expect("one");
    ckan.push(&ds).await.expect("create");
    ds.distributions.push(last);
    fake.fail("resource_create", &[Fault::SilentAfterCommit]);
    fake.clear_log();
    let r = ckan.push(&ds).await.expect("push");
    assert_eq!(summary(&r), report(PackageOutcome::Unchanged, 1, 0, 5, 0));
    assert_eq!(
        fake.actions(),
        ["package_show", "resource_create", "package_show"]
    );
    let resources = fake.package("energy-hourly").expect("package")["resources"].clone();
    let mut keys: Vec<&str> = resources
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|r| r["bydata_key"].as_str())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 6);
    assert_eq!(resources.as_array().map(Vec::len), Some(6));
}

#[tokio::test]
async fn a_failed_resource_create_that_did_not_happen_is_sent_again() {
    let (fake, ckan) = setup().await;
    let mut ds = dataset();
    let last = ds.distributions.pop().expect("one");
    ckan.push(&ds).await.expect("create");
    ds.distributions.push(last);
    fake.fail("resource_create", &[Fault::Status(500)]);
    fake.clear_log();
    let r = ckan.push(&ds).await.expect("push");
    assert_eq!(r.resources_created, 1);
    assert_eq!(
        fake.actions(),
        [
            "package_show",
            "resource_create",
            "package_show",
            "resource_create"
        ]
    );
    assert_eq!(
        fake.package("energy-hourly").expect("package")["resources"]
            .as_array()
            .map(Vec::len),
        Some(6)
    );
}

#[tokio::test]
async fn rate_limiting_honours_retry_after_up_to_the_cap() {
    let (fake, url) = Fake::start().await;
    let policy = RetryPolicy {
        attempts: 3,
        first_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(250),
    };
    let ckan = client(&url, TOKEN, ORG).with_retry_policy(policy);
    fake.fail("package_show", &[Fault::RetryAfter(1)]);
    let start = Instant::now();
    let r = ckan.push(&dataset()).await.expect("push");
    let elapsed = start.elapsed();
    assert_eq!(r.attempts, 3);
    assert!(
        elapsed >= Duration::from_millis(250),
        "waited only {elapsed:?}: Retry-After ignored"
    );
    assert!(
        elapsed < Duration::from_millis(1000),
        "waited {elapsed:?}: cap ignored"
    );
}

#[tokio::test]
async fn retries_stop_after_the_budget() {
    let (fake, ckan) = setup().await;
    fake.fail("package_show", &[Fault::Status(503); 10]);
    let e = ckan.push(&dataset()).await.expect_err("gives up");
    assert!(
        matches!(
            e,
            CkanError::GaveUp {
                action: "package_show",
                attempts: 4,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with("package_show failed after 4 attempts: HTTP 503"),
        "{e}"
    );
    assert_eq!(fake.log().len(), 4);
}

#[tokio::test]
async fn an_unreachable_site_is_retried_then_reported() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let ckan = client(&format!("http://127.0.0.1:{port}"), TOKEN, ORG);
    let e = ckan.push(&dataset()).await.expect_err("refused");
    assert!(matches!(e, CkanError::GaveUp { attempts: 4, .. }), "{e:?}");
}

#[tokio::test]
async fn a_validation_error_is_not_retried_and_names_the_field() {
    let (fake, url) = Fake::start().await;
    let ckan = client(&url, TOKEN, "no-such-org");
    let e = ckan.push(&dataset()).await.expect_err("refused");
    assert!(
        matches!(
            &e,
            CkanError::Refused {
                action: "package_create",
                status: 409,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "package_create refused (409 Validation Error): owner_org: Organization does not exist"
    );
    assert_eq!(fake.calls("package_create").len(), 1);
}

#[tokio::test]
async fn a_wrong_token_is_a_clear_authorization_error_without_the_token() {
    let (fake, url) = Fake::start().await;
    let secret = "wrong-secret-token-42";
    let ckan = client(&url, secret, ORG);
    let e = ckan.push(&dataset()).await.expect_err("denied");
    assert!(
        matches!(
            e,
            CkanError::Authorization {
                action: "package_show",
                status: 403,
                ..
            }
        ),
        "{e:?}"
    );
    let shown = format!("{e} {e:?} {ckan:?}");
    assert!(
        shown.contains("Access denied") && shown.contains(ORG),
        "{shown}"
    );
    assert!(!shown.contains(secret), "token leaked: {shown}");
    assert_eq!(fake.log().len(), 1, "not retried");
    assert_eq!(fake.log()[0].authorization.as_deref(), Some(secret));
}

#[tokio::test]
async fn another_datasets_package_is_not_taken_over() {
    let (fake, ckan) = setup().await;
    ckan.push(&dataset()).await.expect("create");
    let mut other = dataset();
    other.id = "energy-hourly".into(); // maps to the same CKAN name as energy.hourly
    fake.clear_log();
    let e = ckan.push(&other).await.expect_err("name taken");
    assert!(matches!(e, CkanError::NameTaken { .. }), "{e:?}");
    assert!(fake.writes().is_empty());
}

#[tokio::test]
async fn an_unknown_licence_is_refused_before_any_request() {
    let (fake, ckan) = setup().await;
    let mut ds = dataset();
    ds.licence = "MIT".into();
    let e = ckan.push(&ds).await.expect_err("licence");
    assert!(matches!(e, CkanError::Dataset { .. }), "{e:?}");
    assert!(fake.log().is_empty());
    assert_eq!(
        (license_id("CC0-1.0"), license_id("CC-BY-4.0")),
        (Some("cc-zero"), Some("cc-by"))
    );
}

proptest! {
    #[test]
    fn package_names_are_valid_ckan_names(id in "\\PC{0,130}") {
        let name = package_name(&id);
        prop_assert!(valid_name(&name), "{name:?}");
        prop_assert!(!["new", "edit", "search"].contains(&name.as_str()));
    }

    #[test]
    fn slugs_map_to_themselves_but_for_dots(id in "[a-z0-9_-][a-z0-9._-]{1,60}") {
        prop_assume!(!["new", "edit", "search"].contains(&id.as_str()));
        prop_assert_eq!(package_name(&id), id.replace('.', "-"));
    }
}

/// Pushes a two-file dataset twice to a real CKAN; the second push must only read.
#[tokio::test]
async fn live_ckan_push() {
    let (Ok(url), Ok(token), Ok(org)) = (
        std::env::var("BYDATA_TEST_CKAN_URL"),
        std::env::var("BYDATA_TEST_CKAN_TOKEN"),
        std::env::var("BYDATA_TEST_CKAN_ORG"),
    ) else {
        println!("skipped: set BYDATA_TEST_CKAN_URL, BYDATA_TEST_CKAN_TOKEN, BYDATA_TEST_CKAN_ORG");
        return;
    };
    let target = CkanTarget {
        url,
        token,
        owner_org: org,
    };
    let ckan = Ckan::new(target).expect("client");
    let mut ds = dataset();
    ds.id = "bydata-ckan-live-test".into();
    ds.distributions.truncate(2);
    let first = ckan.push(&ds).await.expect("first push");
    println!("first push: {first:?}");
    let second = ckan.push(&ds).await.expect("second push");
    assert_eq!(
        summary(&second),
        report(PackageOutcome::Unchanged, 0, 0, 2, 0),
        "{second:?}"
    );
    assert_eq!(second.attempts, 1);
}
