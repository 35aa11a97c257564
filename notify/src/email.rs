//! E-mail through the `[smtp]` relay (lettre, on tokio, rustls with ring).
//!
//! Every failure is retried within the attempt limit — a 5xx too: a relay refusing bydata's mail (relaying
//! denied, a bad login) is a configuration the operator fixes, and the alert should still arrive then. A
//! refusing relay delays only e-mail: webhooks are sent by tasks of their own.
use crate::config::{SmtpConfig, StartTls};
use crate::webhook::Sent;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Mailboxes};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The relay, ready to send.
#[derive(Clone)]
pub(crate) struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    target: String,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// Why `[smtp]` cannot be used, in the config's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[smtp] {0}")]
pub struct SmtpConfigError(String);

impl Smtp {
    /// The relay of `config`, or `None` when `host` is empty. The CA file is read here, so a bad one fails
    /// the start. `password` overrides the config's (from `BYDATA_SMTP_PASSWORD`).
    pub(crate) fn new(config: &SmtpConfig) -> Result<Option<Smtp>, SmtpConfigError> {
        if config.host.trim().is_empty() {
            return Ok(None);
        }
        let bad = SmtpConfigError;
        let from: Mailbox = config.from.parse().map_err(|_| {
            bad(format!(
                "from = {:?} is not an e-mail address (\"bydata <alerts@example.dk>\")",
                config.from
            ))
        })?;
        let mut tls = TlsParameters::builder(config.host.clone());
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| bad(format!("ca_file {}: cannot be read ({e})", path.display())))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|_| bad(format!("ca_file {}: not a PEM certificate", path.display())))?;
            tls = tls.add_root_certificate(cert);
        }
        let tls = tls
            .build_rustls()
            .map_err(|e| bad(format!("TLS settings: {e}")))?;
        let tls = match config.starttls {
            StartTls::Required => Tls::Required(tls),
            StartTls::Opportunistic => Tls::Opportunistic(tls),
            StartTls::Off => Tls::None,
        };
        let helo = match config.helo_name.trim() {
            "" => ClientId::Domain("localhost".into()),
            name => ClientId::Domain(name.to_owned()),
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.clone())
                .port(config.port)
                .tls(tls)
                .hello_name(helo)
                .timeout(Some(Duration::from_secs(config.timeout_secs.max(1))));
        match (&config.username, &config.password) {
            (Some(user), Some(password)) => {
                builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
            }
            (Some(_), None) => {
                return Err(bad(
                    "username is set but no password: set BYDATA_SMTP_PASSWORD (or password)"
                        .into(),
                ));
            }
            (None, Some(_)) => {
                return Err(bad("a password needs a username".into()));
            }
            (None, None) => {}
        }
        Ok(Some(Smtp {
            transport: builder.build(),
            from,
            target: format!("{}:{}", config.host, config.port),
        }))
    }

    /// Sends one mail; `key` becomes its Message-ID (the same at every attempt, so mail clients show a
    /// repeated delivery once).
    pub(crate) async fn send(
        &self,
        to: &[String],
        key: &str,
        subject: String,
        text: String,
    ) -> Sent {
        let mut recipients = Mailboxes::new();
        for address in to {
            match address.parse::<Mailbox>() {
                Ok(m) => recipients.push(m),
                Err(_) => {
                    return Sent::Refused {
                        error: format!("{address:?} is not an e-mail address"),
                        answer: None,
                    };
                }
            }
        }
        let id = hex::encode(&Sha256::digest(key.as_bytes())[..16]);
        let message = Message::builder()
            .from(self.from.clone())
            .mailbox(lettre::message::header::To::from(recipients))
            .subject(subject)
            .message_id(Some(format!("<{id}@bydata>")))
            .header(ContentType::TEXT_PLAIN)
            .body(text);
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                return Sent::Refused {
                    error: format!("the mail cannot be built: {e}"),
                    answer: None,
                };
            }
        };
        match self.transport.send(message).await {
            Ok(response) => Sent::Delivered {
                answer: format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                )
                .trim()
                .to_owned(),
            },
            Err(e) => {
                let (error, answer) = self.in_words(&e);
                Sent::Retry {
                    error,
                    answer,
                    retry_after: None,
                }
            }
        }
    }

    /// A failed send in words, and the server's answer if it gave one.
    fn in_words(&self, e: &lettre::transport::smtp::Error) -> (String, Option<String>) {
        let target = &self.target;
        let mut cause: &dyn std::error::Error = e;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        if let Some(code) = e.status() {
            let answer = format!("{code} {cause}");
            let error = format!("the SMTP server {target} refused the mail: {answer}");
            return (error, Some(answer));
        }
        let error = if e.is_timeout() {
            format!("the SMTP server {target} did not answer in time")
        } else if e.is_tls() {
            format!("TLS with the SMTP server {target} failed: {cause}")
        } else if e.is_client() && cause.to_string().contains("STARTTLS") {
            format!(
                "the SMTP server {target} does not offer STARTTLS, and [smtp] starttls = \"required\""
            )
        } else {
            format!("cannot send through the SMTP server {target}: {cause}")
        };
        (error, None)
    }
}

/// Checks a recipient as the API takes it.
pub fn check_address(address: &str) -> Result<(), String> {
    address
        .parse::<lettre::Address>()
        .map(|_| ())
        .map_err(|_| format!("{address:?} is not an e-mail address (name@example.dk)"))
}
