//! `[oidc]`: the identity provider people log in with, and how its groups become organisation roles.
use super::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Logging in with OpenID Connect (`[oidc]`; absent: no login, API keys only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer URL, exactly as its discovery document says it
    /// (`https://login.microsoftonline.com/<tenant-id>/v2.0` for Entra ID).
    pub issuer: String,
    /// bydata's client (application) id at the provider.
    pub client_id: String,
    /// The client secret; or `client_secret_file`; neither for a public client (`client_auth = "none"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// A file holding the client secret (surrounding whitespace is ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<PathBuf>,
    /// How bydata authenticates at the token endpoint.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// bydata's public base URL as browsers reach it (`https://iot.aarhus.dk`); the provider sends people
    /// back to `<public_url>/auth/callback`, which must be registered as a redirect URI there.
    pub public_url: String,
    /// Scopes asked for besides `openid email profile` (e.g. `groups` for providers that need it).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The ID token claim whose values map to roles: `groups` (Entra ID: group object ids) or `roles`
    /// (Entra ID: app roles).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Which claim value gives which role in which organisation.
    #[serde(default)]
    pub roles: Vec<RoleMapping>,
    /// Claim values whose holders are platform admins (every organisation, organisations themselves).
    #[serde(default)]
    pub platform_admins: Vec<String>,
    /// Longest a login session lasts, in minutes, however active.
    #[serde(default = "default_session_minutes")]
    pub session_minutes: u64,
    /// A session unused this many minutes ends.
    #[serde(default = "default_idle_minutes")]
    pub idle_minutes: u64,
}

fn default_groups_claim() -> String {
    "groups".into()
}

fn default_session_minutes() -> u64 {
    8 * 60
}

fn default_idle_minutes() -> u64 {
    60
}

/// One `[[oidc.roles]]`: holders of `claim_value` get `role` in `org`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleMapping {
    pub claim_value: String,
    pub org: String,
    /// `viewer`, `editor` or `admin`.
    pub role: String,
}

/// Client authentication at the token endpoint (OpenID Connect Core §9).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// `client_secret_basic`: the secret in an `Authorization: Basic` header (the default).
    #[default]
    #[serde(alias = "client_secret_basic")]
    Basic,
    /// `client_secret_post`: the secret in the form body.
    #[serde(alias = "client_secret_post")]
    Post,
    /// A public client: no secret, PKCE alone.
    None,
}

/// A secret that `Debug` does not print.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// `[oidc]` checked and its secret read: what the client uses.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) issuer: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: Option<Secret>,
    pub(crate) client_auth: ClientAuth,
    pub(crate) redirect_uri: String,
    /// Where the provider sends people after logging out: bydata's front page.
    pub(crate) post_logout_redirect_uri: String,
    pub(crate) scope: String,
    pub(crate) groups_claim: String,
}

impl OidcConfig {
    /// Checks the URLs (HTTPS, but for loopback) and the client authentication, and reads the secret file.
    pub(crate) fn settings(&self) -> Result<Settings> {
        let bad = |reason: String| Error::Config { reason };
        let issuer = checked_url("issuer", &self.issuer).map_err(bad)?;
        let public = checked_url("public_url", &self.public_url).map_err(bad)?;
        if self.client_id.trim().is_empty() {
            return Err(bad("client_id is empty".into()));
        }
        let secret = match (&self.client_secret, &self.client_secret_file) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "set client_secret or client_secret_file, not both".into()
                ));
            }
            (Some(s), None) => Some(s.clone()),
            (None, Some(path)) => Some(Secret(
                std::fs::read_to_string(path)
                    .map_err(|e| {
                        bad(format!(
                            "cannot read client_secret_file {}: {e}",
                            path.display()
                        ))
                    })?
                    .trim()
                    .to_owned(),
            )),
            (None, None) => None,
        };
        match (
            self.client_auth,
            secret.as_ref().is_some_and(|s| !s.0.is_empty()),
        ) {
            (ClientAuth::None, true) => {
                return Err(bad(
                    "client_auth = \"none\" (a public client) takes no client secret".into(),
                ));
            }
            (ClientAuth::Basic | ClientAuth::Post, false) => {
                return Err(bad(
                    "a client secret is needed (client_secret or client_secret_file), or set \
                     client_auth = \"none\" for a public client"
                        .into(),
                ));
            }
            _ => {}
        }
        for (i, m) in self.roles.iter().enumerate() {
            if !matches!(m.role.as_str(), "viewer" | "editor" | "admin") {
                return Err(bad(format!(
                    "roles[{i}].role is {:?}; use viewer, editor or admin",
                    m.role
                )));
            }
        }
        if self.session_minutes == 0 || self.idle_minutes == 0 {
            return Err(bad(
                "session_minutes and idle_minutes must be above 0".into()
            ));
        }
        let mut scope = vec!["openid".to_owned(), "email".into(), "profile".into()];
        for s in &self.scopes {
            if !scope.contains(s) {
                scope.push(s.clone());
            }
        }
        Ok(Settings {
            issuer,
            client_id: self.client_id.clone(),
            client_secret: secret,
            client_auth: self.client_auth,
            redirect_uri: format!("{}/auth/callback", public.trim_end_matches('/')),
            post_logout_redirect_uri: format!("{}/", public.trim_end_matches('/')),
            scope: scope.join(" "),
            groups_claim: self.groups_claim.clone(),
        })
    }
}

/// `url` parsed: HTTPS, or HTTP to a loopback host (tests, a provider beside bydata).
fn checked_url(key: &str, url: &str) -> Result<String, String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| format!("{key} {url:?} is not a URL: {e}"))?;
    let loopback = matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match parsed.scheme() {
        "https" => Ok(url.to_owned()),
        "http" if loopback => Ok(url.to_owned()),
        _ => Err(format!(
            "{key} {url:?} must be an https:// URL (http:// only to localhost)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> std::result::Result<OidcConfig, toml::de::Error> {
        toml::from_str(&format!(
            "issuer = \"https://login.example/tenant/v2.0\"\nclient_id = \"c\"\npublic_url = \"https://iot.example/\"\n{extra}"
        ))
    }

    #[test]
    fn settings_are_checked_in_words() {
        let ok = config("client_secret = \"s\"")
            .expect("parses")
            .settings()
            .expect("ok");
        assert_eq!(ok.redirect_uri, "https://iot.example/auth/callback");
        assert_eq!(ok.scope, "openid email profile");
        assert_eq!(ok.groups_claim, "groups");
        assert!(
            !format!("{ok:?}").contains("\"s\""),
            "the secret is not printed"
        );
        let cases = [
            ("", "a client secret is needed"),
            (
                "client_auth = \"none\"\nclient_secret = \"s\"",
                "takes no client secret",
            ),
            (
                "client_secret = \"s\"\nclient_secret_file = \"f\"",
                "not both",
            ),
            (
                "client_secret_file = \"/nonexistent/secret\"",
                "cannot read",
            ),
            (
                "client_secret = \"s\"\n[[roles]]\nclaim_value = \"g\"\norg = \"o\"\nrole = \"owner\"",
                "use viewer, editor or admin",
            ),
        ];
        for (extra, says) in cases {
            let err = config(extra)
                .expect("parses")
                .settings()
                .expect_err(extra)
                .to_string();
            assert!(err.contains(says), "{extra}: {err}");
        }
        let http: OidcConfig = toml::from_str(
            "issuer = \"http://idp.example\"\nclient_id = \"c\"\npublic_url = \"http://127.0.0.1:8080\"\nclient_auth = \"none\"",
        )
        .expect("parses");
        assert!(
            http.settings()
                .expect_err("http")
                .to_string()
                .contains("https://")
        );
        assert!(
            config("client_secret = \"s\"\nsecret = 1").is_err(),
            "unknown keys refused"
        );
        let public = config("client_auth = \"none\"\nscopes = [\"groups\", \"openid\"]")
            .expect("parses")
            .settings()
            .expect("ok");
        assert_eq!(public.scope, "openid email profile groups");
    }
}
