//! The password gate lives in `bydata_store::logins`: the HTTP push checks device logins through the same gate
//! (one Argon2 pool, one memory of verified logins, one backoff for both edges). The broker counts its own
//! checks in its metrics.
use crate::metrics::{Metrics, inc};
pub(crate) use bydata_store::logins::{Gate, Identity, Verdict};

impl bydata_store::logins::GateCounters for Metrics {
    fn argon2(&self) {
        inc(&self.password_checks);
    }
    fn remembered(&self) {
        inc(&self.auth_remembered);
    }
}
