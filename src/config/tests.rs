use super::*;

#[test]
fn printed_default_parses_back_to_the_default() {
    let parsed: Config = toml::from_str(&Config::commented_default()).expect("valid TOML");
    assert_eq!(parsed, Config::default());
}

#[test]
fn listeners_turn_off_and_tls_parses() {
    let parsed: Config = toml::from_str(
        "[broker]\nmqtt_addr = \"off\"\nmqtts_addr = \"127.0.0.1:8883\"\n[tls]\ncert_pem = \"c.pem\"\nkey_pem = \"k.pem\"",
    )
    .expect("valid");
    assert_eq!(parsed.broker.mqtt_addr, None);
    assert_eq!(
        parsed.broker.mqtts_addr,
        Some(([127, 0, 0, 1], 8883).into())
    );
    assert_eq!(parsed.tls.expect("tls").cert_pem, PathBuf::from("c.pem"));
    let err = toml::from_str::<Config>("[api]\nhttp_addr = \"of\"").expect_err("refused");
    assert!(err.to_string().contains("nor \"off\""), "{err}");
}

#[test]
fn a_secrets_key_file_parses() {
    let parsed: Config =
        toml::from_str("[registry]\nsecrets_key_file = \"/etc/bydata/secrets.key\"")
            .expect("valid");
    assert_eq!(
        parsed.registry.secrets_key_file,
        Some(PathBuf::from("/etc/bydata/secrets.key"))
    );
}

#[test]
fn oidc_parses_with_its_role_mappings() {
    let parsed: Config = toml::from_str(
        "[oidc]\nissuer = \"https://idp.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\n\
         public_url = \"https://iot.example\"\n[[oidc.roles]]\nclaim_value = \"g\"\norg = \"traffic\"\n\
         role = \"viewer\"",
    )
    .expect("valid");
    let oidc = parsed.oidc.expect("oidc");
    assert_eq!(
        (oidc.roles.len(), oidc.groups_claim.as_str()),
        (1, "groups")
    );
    assert_eq!(oidc.session_minutes, 480);
    assert!(toml::from_str::<Config>("[oidc]\nissuer = \"x\"\nclient = \"c\"").is_err());
}

#[test]
fn unknown_keys_are_refused() {
    assert!(toml::from_str::<Config>("[broker]\nmqtt_adr = \"127.0.0.1:1\"").is_err());
}
