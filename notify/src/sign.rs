//! Webhook signatures: `X-Bydata-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`, the
//! timestamp (Unix seconds) in `X-Bydata-Timestamp`. The key is the secret's text as shown at creation
//! (`whsec_…`, its UTF-8 bytes). Signing the timestamp with the body lets a receiver refuse replays of an old
//! request; comparing in constant time ([`verify`]) keeps the check from leaking the signature.
use ring::hmac;

/// The signature header: `sha256=` and 64 hex digits.
pub const SIGNATURE_HEADER: &str = "X-Bydata-Signature";
/// When the request was signed, in Unix seconds (decimal).
pub const TIMESTAMP_HEADER: &str = "X-Bydata-Timestamp";
/// The message's idempotency key: a receiver drops a key it has seen.
pub const DELIVERY_HEADER: &str = "X-Bydata-Delivery";

/// The value of [`SIGNATURE_HEADER`] for `body` sent at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("sha256={}", hex::encode(ctx.sign().as_ref()))
}

/// Why a signed request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("X-Bydata-Timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("the request was signed {age} s away from now (more than the {tolerance} s allowed)")]
    Stale { age: i64, tolerance: i64 },
    #[error("X-Bydata-Signature is not \"sha256=\" and 64 hex digits")]
    BadSignature,
    #[error("the signature does not match the body (wrong secret, or the body was changed)")]
    Mismatch,
}

/// Checks a request as a receiver should: the timestamp within `tolerance_secs` of `now` (Unix seconds),
/// then the HMAC over `"<timestamp>.<body>"` in constant time.
pub fn verify(
    secret: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let ts: i64 = timestamp.parse().map_err(|_| VerifyError::BadTimestamp)?;
    let age = now.saturating_sub(ts);
    if age.abs() > tolerance_secs {
        return Err(VerifyError::Stale {
            age,
            tolerance: tolerance_secs,
        });
    }
    let tag = signature
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .filter(|t| t.len() == 32)
        .ok_or(VerifyError::BadSignature)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = Vec::with_capacity(timestamp.len() + 1 + body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    hmac::verify(&key, &signed, &tag).map_err(|_| VerifyError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_known_vector() {
        // echo -n '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
        assert_eq!(
            sign("whsec_test", 1_700_000_000, br#"{"a":1}"#),
            "sha256=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }

    #[test]
    fn refusals_say_why() {
        let sig = sign("s", 100, b"body");
        assert_eq!(verify("s", "100", &sig, b"body", 110, 300), Ok(()));
        assert_eq!(
            verify("s", "100", &sig, b"body", 1000, 300),
            Err(VerifyError::Stale {
                age: 900,
                tolerance: 300
            })
        );
        assert_eq!(
            verify("s", "x", &sig, b"body", 100, 300),
            Err(VerifyError::BadTimestamp)
        );
        assert_eq!(
            verify("s", "100", "sha1=00", b"body", 100, 300),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify("t", "100", &sig, b"body", 100, 300),
            Err(VerifyError::Mismatch)
        );
    }

    proptest! {
        #[test]
        fn what_is_signed_verifies_and_any_change_does_not(
            secret in "[a-zA-Z0-9_]{1,40}",
            ts in 0i64..4_000_000_000,
            body in proptest::collection::vec(any::<u8>(), 0..512),
            flip in any::<usize>(),
        ) {
            let sig = sign(&secret, ts, &body);
            prop_assert_eq!(sig.len(), "sha256=".len() + 64);
            prop_assert_eq!(verify(&secret, &ts.to_string(), &sig, &body, ts, 300), Ok(()));
            let mut changed = body.clone();
            if changed.is_empty() {
                changed.push(0);
            } else {
                let i = flip % changed.len();
                changed[i] ^= 1;
            }
            prop_assert_eq!(
                verify(&secret, &ts.to_string(), &sig, &changed, ts, 300),
                Err(VerifyError::Mismatch)
            );
            prop_assert_eq!(
                verify(&secret, &(ts + 1).to_string(), &sig, &body, ts, 300),
                Err(VerifyError::Mismatch)
            );
        }

        #[test]
        fn verify_never_panics(
            ts in ".{0,24}",
            sig in ".{0,80}",
            body in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let _ = verify("s", &ts, &sig, &body, 0, 300);
        }
    }
}
