//! One validation layer for JSON bodies, through `api::router`: a body with several problems gets every
//! problem named in one answer, field by field, on every create, change and action endpoint; a JSON body is
//! read whatever its Content-Type, and anything else is named in words.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use common::{assert_error_shape, call, req, send, state};
use serde_json::{Value, json};

/// A method, a path, a body, and each (field, words) its answer must name.
type Case = (
    &'static str,
    &'static str,
    Value,
    Vec<(&'static str, &'static str)>,
);

fn dataset() -> Value {
    json!({
        "id": "co2", "title": {"da": "CO2", "en": "CO2"}, "description": {"da": "x", "en": "x"},
        "themes": ["ENVI"], "licence": "CC0-1.0", "update_frequency": "DAILY",
        "publisher": {"name": "Aarhus"}, "contact_point": {"name": "Smart City", "email": "smartcity@aarhus.dk"},
        "selection": {"measurement": "co2"}, "aggregation": {"every": "1h", "fn": "mean"},
    })
}

#[tokio::test]
async fn every_problem_of_a_body_is_named_in_one_answer() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    let (code, created) = send(
        &s,
        "POST",
        "/api/v1/devices",
        &json!({"id": "meter-1", "name": "Meter", "transport": "mqtt", "domain": "energy"}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let (code, answer) = send(&s, "POST", "/api/v1/datasets", &dataset()).await;
    assert_eq!(code, StatusCode::CREATED, "{answer}");

    let mut bad_dataset = dataset();
    bad_dataset["title"] = json!("CO2");
    bad_dataset["description"] = json!({"da": "x"});
    bad_dataset["colour"] = json!("red");
    bad_dataset["aggregation"]["fn"] = json!(3);
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/api/v1/devices",
            json!({"id": "Bad Id", "transport": "pigeon", "domain": "buildings",
                   "location": {"lat": 95, "lon": "10"}, "tags": {"room": 1}, "colour": "red"}),
            vec![
                ("id", "\"Bad Id\" is not valid: use 1 to 64 of a-z"),
                ("name", "required"),
                ("transport", "\"pigeon\" is not one of mqtt, lorawan, http"),
                (
                    "domain",
                    "\"buildings\" is not one of air, building, energy",
                ),
                ("location.lat", "must be at most 90"),
                ("location.lon", "expected a number, found the string \"10\""),
                ("tags.room", "expected a string, found the number 1"),
                ("colour", "unknown field (the fields are codec, domain,"),
            ],
        ),
        (
            "PATCH",
            "/api/v1/devices/meter-1",
            json!({"codec": "lua:x", "name": "y"}),
            vec![
                ("codec", "use auto, senml, json, cayenne, js:<name>"),
                ("name", "unknown field"),
            ],
        ),
        (
            "POST",
            "/api/v1/devices/meter-1/redecode",
            json!({"from": 1, "force": "yes"}),
            vec![
                ("from", "expected a string, found the number 1"),
                ("to", "required"),
                ("force", "expected true or false, found the string \"yes\""),
            ],
        ),
        (
            "POST",
            "/api/v1/gateways",
            json!({"eui": "00-16", "name": "", "location": "roof"}),
            vec![
                ("eui", "use 16 hex digits"),
                ("name", "must not be empty"),
                (
                    "location",
                    "expected an object with \"lat\" and \"lon\", found the string \"roof\"",
                ),
            ],
        ),
        (
            "POST",
            "/api/v1/buildings",
            json!({"id": "Rådhuset", "floor_area_m2": -3, "kind": "office", "price_area": "DK3"}),
            vec![
                ("id", "is not valid"),
                ("name", "required"),
                ("floor_area_m2", "must be more than 0"),
                ("price_area", "\"DK3\" is not one of DK1, DK2"),
            ],
        ),
        (
            "POST",
            "/api/v1/codecs",
            json!({"name": "Elsys", "script": 5, "examples": {}}),
            vec![
                ("name", "is not valid"),
                ("script", "expected a string, found the number 5"),
                ("examples", "expected a list, found an object"),
            ],
        ),
        (
            "POST",
            "/api/v1/integrations",
            json!({"id": "cs", "name": "ChirpStack", "network_server": "loriot", "mode": "push", "port": 0}),
            vec![
                ("network_server", "\"loriot\" is not one of chirpstack, tts"),
                ("mode", "\"push\" is not one of inbound, subscribe"),
                ("port", "must be at least 1"),
            ],
        ),
        (
            "POST",
            "/api/v1/datasets",
            bad_dataset,
            vec![
                (
                    "title",
                    "expected an object with \"da\" and \"en\", found the string \"CO2\"",
                ),
                ("description.en", "required"),
                ("colour", "unknown field"),
                ("aggregation.fn", "expected a string, found the number 3"),
            ],
        ),
        (
            "POST",
            "/api/v1/datasets/co2/publish",
            json!({"period": 202603, "all": true}),
            vec![
                (
                    "period",
                    "expected a string or null, found the number 202603",
                ),
                ("all", "unknown field"),
            ],
        ),
        (
            "POST",
            "/api/v1/tokens",
            json!({"role": "superuser", "name": 7}),
            vec![
                ("role", "\"superuser\" is not one of viewer, editor, admin"),
                ("name", "expected a string, found the number 7"),
            ],
        ),
    ];
    for (method, path, body, wanted) in cases {
        let (code, answer) = send(&s, method, path, &body).await;
        let context = format!("{method} {path}");
        assert_eq!(code, StatusCode::BAD_REQUEST, "{context}: {answer}");
        assert_error_shape(&answer, &context);
        assert_eq!(
            answer["error"]["code"], "invalid_body",
            "{context}: {answer}"
        );
        let problems = answer["error"]["problems"].as_array().unwrap();
        assert_eq!(problems.len(), wanted.len(), "{context}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{} problems: ", wanted.len())),
            "{context}: {message}"
        );
        for (field, says) in wanted {
            assert!(
                problems
                    .iter()
                    .any(|p| p["field"] == field && p["message"].as_str().unwrap().contains(says)),
                "{context}: no {field:?} saying {says:?} in {answer}"
            );
            assert!(
                message.contains(&format!("{field}: ")),
                "{context}: {message}"
            );
        }
    }
}

#[tokio::test]
async fn a_json_body_is_read_whatever_its_content_type_and_anything_else_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    // curl -d sends application/x-www-form-urlencoded: the README's token example must work as pasted.
    let body = r#"{"name": "telegraf", "role": "editor"}"#;
    for content_type in ["application/x-www-form-urlencoded", "text/plain", ""] {
        let (code, answer, _) = call(&s, req("POST", "/api/v1/tokens", content_type, body)).await;
        assert_eq!(code, StatusCode::CREATED, "{content_type}: {answer}");
        assert!(answer["token"].as_str().unwrap().starts_with("bdt_"));
    }
    for (body, says) in [
        ("name=telegraf&role=write", "the body is not JSON"),
        (
            r#"{"name": "telegraf""#,
            "the body is not JSON (it ends too early",
        ),
        ("", "the body is empty: send a JSON object with name, role"),
        (
            "[1, 2]",
            "expected an object with \"name\" and \"role\", found a list",
        ),
    ] {
        let (code, answer, _) = call(
            &s,
            req(
                "POST",
                "/api/v1/tokens",
                "application/x-www-form-urlencoded",
                body,
            ),
        )
        .await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_error_shape(&answer, body);
        assert_eq!(answer["error"]["code"], "invalid_body");
        assert_eq!(answer["error"]["problems"][0]["field"], "", "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }
}
