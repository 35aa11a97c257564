//! The relying party's side of the authorization code flow with PKCE, over HTTP to the provider: discovery
//! (cached), the authorization URL, the code exchange, the ID token's verification against the provider's
//! keys (cached, fetched again once when a token names a key not yet seen), and the logout URL.
use super::claims::{self, Expect, Identity};
use super::config::{ClientAuth, Settings};
use super::error::{Error, Result};
use super::jws::{self, Jwks};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long the discovery document is trusted before it is fetched again.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// Most bytes read of any answer of the provider.
const MAX_ANSWER_BYTES: usize = 512 * 1024;
/// How long one request to the provider may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The endpoints of the provider's discovery document that bydata uses.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    end_session_endpoint: Option<String>,
}

/// A login begun: where to send the browser, and what to keep (server-side) until it comes back.
#[derive(Debug)]
pub(crate) struct LoginStart {
    pub(crate) url: String,
    pub(crate) state: String,
    pub(crate) nonce: String,
    pub(crate) verifier: String,
}

/// A login completed: who, and the ID token (only as `id_token_hint` at logout; never logged).
#[derive(Debug)]
pub(crate) struct Completed {
    pub(crate) identity: Identity,
    pub(crate) id_token: String,
}

/// The OpenID Connect client.
#[derive(Debug)]
pub(crate) struct Client {
    settings: Settings,
    http: reqwest::Client,
    discovery: Mutex<Option<(Arc<Discovery>, Instant)>>,
    jwks: Mutex<Arc<Jwks>>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl Client {
    pub(crate) fn new(settings: Settings) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Config {
                reason: format!("cannot make an HTTP client: {e}"),
            })?;
        Ok(Self {
            settings,
            http,
            discovery: Mutex::new(None),
            jwks: Mutex::new(Arc::new(Jwks::default())),
        })
    }

    /// The discovery document, fetched when not cached or older than [`DISCOVERY_TTL`]; a stale copy is
    /// used while the provider cannot be reached.
    async fn discovery(&self) -> Result<Arc<Discovery>> {
        let mut cached = self.discovery.lock().await;
        if let Some((doc, at)) = cached.as_ref()
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(doc.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.settings.issuer.trim_end_matches('/')
        );
        let fetched = self.get(&url).await.and_then(|bytes| {
            let doc: Discovery = serde_json::from_slice(&bytes).map_err(|e| Error::Provider {
                url: url.clone(),
                reason: format!("not a discovery document: {e}"),
            })?;
            if doc.issuer != self.settings.issuer {
                return Err(Error::Provider {
                    url: url.clone(),
                    reason: format!(
                        "it names the issuer {:?}; set issuer to exactly that",
                        doc.issuer
                    ),
                });
            }
            Ok(doc)
        });
        match (fetched, cached.as_ref()) {
            (Ok(doc), _) => {
                let doc = Arc::new(doc);
                *cached = Some((doc.clone(), Instant::now()));
                Ok(doc)
            }
            (Err(e), Some((stale, _))) => {
                tracing::warn!(error = %e, "identity provider discovery failed; using the cached document");
                Ok(stale.clone())
            }
            (Err(e), None) => Err(e),
        }
    }

    /// Starts a login: a fresh `state`, `nonce` and PKCE verifier, and the provider's authorization URL.
    pub(crate) async fn begin(&self) -> Result<LoginStart> {
        let doc = self.discovery().await?;
        let (state, nonce, verifier) = (random(), random(), random());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let mut url =
            reqwest::Url::parse(&doc.authorization_endpoint).map_err(|e| Error::Provider {
                url: doc.authorization_endpoint.clone(),
                reason: format!("its authorization_endpoint is not a URL: {e}"),
            })?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &self.settings.redirect_uri)
            .append_pair("scope", &self.settings.scope)
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(LoginStart {
            url: url.into(),
            state,
            nonce,
            verifier,
        })
    }

    /// Exchanges `code` (with the login's PKCE `verifier`) at the token endpoint and verifies the ID token
    /// against `nonce`, at `now` (Unix seconds).
    pub(crate) async fn finish(
        &self,
        code: &str,
        verifier: &str,
        nonce: &str,
        now: i64,
    ) -> Result<Completed> {
        let doc = self.discovery().await?;
        let s = &self.settings;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", s.redirect_uri.as_str()),
            ("code_verifier", verifier),
        ];
        let secret = s.client_secret.as_ref().map(|s| s.0.as_str()).unwrap_or("");
        let mut request = self.http.post(&doc.token_endpoint);
        match s.client_auth {
            ClientAuth::Basic => {
                // RFC 6749 §2.3.1: both parts form-urlencoded before Base64.
                let pair = format!("{}:{}", form_encode(&s.client_id), form_encode(secret));
                request = request.header(
                    reqwest::header::AUTHORIZATION,
                    format!("Basic {}", STANDARD.encode(pair)),
                );
            }
            ClientAuth::Post => {
                form.push(("client_id", &s.client_id));
                form.push(("client_secret", secret));
            }
            ClientAuth::None => form.push(("client_id", &s.client_id)),
        }
        let url = doc.token_endpoint.clone();
        let unreachable = |e: reqwest::Error| Error::Provider {
            url: url.clone(),
            reason: e.without_url().to_string(),
        };
        let response = request.form(&form).send().await.map_err(unreachable)?;
        let status = response.status();
        let body = read_limited(response).await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<TokenError>(&body) {
                Ok(e) => Error::TokenRefused {
                    error: e.error.chars().take(64).collect(),
                    description: e.error_description.map(|d| d.chars().take(200).collect()),
                },
                Err(_) => Error::Provider {
                    url,
                    reason: format!("the token endpoint answered {status}"),
                },
            });
        }
        let id_token = serde_json::from_slice::<TokenAnswer>(&body)
            .ok()
            .and_then(|a| a.id_token)
            .ok_or_else(|| Error::Provider {
                url,
                reason: "the token endpoint's answer holds no id_token".into(),
            })?;
        let identity = self.verify(&id_token, nonce, now).await?;
        Ok(Completed { identity, id_token })
    }

    /// Verifies an ID token's signature and claims.
    async fn verify(&self, id_token: &str, nonce: &str, now: i64) -> Result<Identity> {
        let token = jws::parse(id_token)?;
        let jwks = self.keys_for(&token).await?;
        jwks.verify(&token)?;
        let s = &self.settings;
        Ok(claims::check(
            &token.payload,
            &Expect {
                issuer: &s.issuer,
                client_id: &s.client_id,
                nonce,
                groups_claim: &s.groups_claim,
            },
            now,
        )?)
    }

    /// The key set, fetched again (once) when it holds no key for `token` — the provider rotated its keys.
    async fn keys_for(&self, token: &jws::Jws) -> Result<Arc<Jwks>> {
        let mut jwks = self.jwks.lock().await;
        if !jwks.has_key_for(token) {
            let doc = self.discovery().await?;
            let bytes = self.get(&doc.jwks_uri).await?;
            *jwks = Arc::new(Jwks::parse(&bytes)?);
        }
        Ok(jwks.clone())
    }

    /// Where to send a browser after its session ended here, so the provider ends its session too; `None`
    /// when the provider has no `end_session_endpoint` (Entra ID has one, so has KOMBIT's).
    pub(crate) async fn end_session_url(&self, id_token_hint: Option<&str>) -> Option<String> {
        let doc = self.discovery().await.ok()?;
        let mut url = reqwest::Url::parse(doc.end_session_endpoint.as_deref()?).ok()?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &self.settings.client_id);
            q.append_pair(
                "post_logout_redirect_uri",
                &self.settings.post_logout_redirect_uri,
            );
            if let Some(hint) = id_token_hint {
                q.append_pair("id_token_hint", hint);
            }
        }
        Some(url.into())
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>> {
        let failed = |reason: String| Error::Provider {
            url: url.to_owned(),
            reason,
        };
        let response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| failed(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(failed(format!("it answered {}", response.status())));
        }
        read_limited(response)
            .await
            .map_err(|e| failed(e.without_url().to_string()))
    }
}

/// The body, cut at [`MAX_ANSWER_BYTES`] (a provider's answers are small; a cut one fails to parse).
async fn read_limited(mut response: reqwest::Response) -> reqwest::Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_ANSWER_BYTES.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    Ok(body)
}

fn form_encode(s: &str) -> String {
    reqwest::Url::parse_with_params("x:", [("", s)])
        .ok()
        .and_then(|u| u.query().map(|q| q.trim_start_matches('=').to_owned()))
        .unwrap_or_default()
}

/// 256 random bits from the OS, base64url: a state, a nonce, a PKCE verifier (43 characters, RFC 7636).
pub(crate) fn random() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_form_encoded_for_basic_auth() {
        assert_eq!(form_encode("a~b c:d+é"), "a%7Eb+c%3Ad%2B%C3%A9");
        assert_eq!(random().len(), 43);
        assert_ne!(random(), random());
    }
}
