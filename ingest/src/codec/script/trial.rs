//! Running a codec once on given bytes, for `POST /api/v1/codecs/test`: in a fresh sandbox with the pipeline's
//! limits, saving nothing. Whatever went wrong is part of the answer (`errors`), in the words a device's owner
//! reads on the device's status, since the request itself was fine.

use super::stored::stored;
use super::{Limits, ScriptCodec, ScriptError};
use crate::codec::DecodeContext;
use bydata_schemas::{CodecTrial, TrialReading, UnixNanos};
use std::collections::BTreeMap;

/// Loads `script`, decodes `bytes` on `fport` received at `recv_time`, and converts the result as the pipeline
/// does. `Err` only when the sandbox itself failed (not the codec's fault).
pub fn trial(
    limits: Limits,
    script: &str,
    fport: u8,
    bytes: &[u8],
    recv_time: UnixNanos,
) -> Result<CodecTrial, ScriptError> {
    let failed = |errors: Vec<String>| CodecTrial {
        ok: false,
        data: None,
        warnings: Vec::new(),
        errors,
        readings: Vec::new(),
        state: BTreeMap::new(),
    };
    let mut codec = match ScriptCodec::new(script, limits) {
        Ok(codec) => codec,
        Err(e @ ScriptError::Internal { .. }) => return Err(e),
        Err(e) => return Ok(failed(vec![format!("the script does not load: {e}")])),
    };
    let output = match codec.decode_uplink(fport, bytes, recv_time) {
        Ok(output) => output,
        Err(ScriptError::CodecErrors { errors }) => return Ok(failed(errors)),
        Err(e @ ScriptError::Internal { .. }) => return Err(e),
        Err(e) => return Ok(failed(vec![e.to_string()])),
    };
    let data = Some(output.data.clone());
    Ok(match stored(&output, &DecodeContext::new(recv_time)) {
        Ok(s) => CodecTrial {
            ok: true,
            data,
            warnings: s.warnings,
            errors: Vec::new(),
            readings: s
                .readings
                .into_iter()
                .map(|r| TrialReading {
                    measurement: r.measurement.as_str().to_owned(),
                    value: r.value,
                    unit: r.unit.map(|u| u.to_string()),
                })
                .collect(),
            state: s.state,
        },
        Err(e) => CodecTrial {
            data,
            warnings: output.warnings,
            ..failed(vec![format!("bydata would refuse this message: {e}")])
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    const RECV: UnixNanos = super::super::EXAMPLE_RECV_TIME;

    fn run(script: &str, fport: u8, bytes: &[u8]) -> CodecTrial {
        trial(Limits::default(), script, fport, bytes, RECV).unwrap()
    }

    #[test]
    fn says_what_would_be_stored() {
        let t = run(
            "function decodeUplink(i) { return {data: {temperature: i.bytes[0] / 2, mode: 'eco', \
             note: null}, warnings: ['low']}; }",
            100,
            &[45],
        );
        assert!(t.ok && t.errors.is_empty(), "{t:?}");
        assert_eq!(
            t.data,
            json!({"temperature": 22.5, "mode": "eco", "note": null})
                .as_object()
                .cloned()
        );
        assert_eq!(t.readings.len(), 1);
        assert_eq!(
            (t.readings[0].measurement.as_str(), t.readings[0].value),
            ("temperature", 22.5)
        );
        assert_eq!(t.readings[0].unit.as_deref(), Some("Cel"));
        assert_eq!(t.state.get("mode").map(String::as_str), Some("eco"));
        assert_eq!(
            t.warnings,
            [
                "low",
                "kept as text state, not as series: mode (see the device's latest state)",
                "not stored (not a number, boolean or text): note (null)"
            ]
        );
    }

    #[test]
    fn failures_are_answers() {
        let load = run("function decodeUplink( {", 1, &[]);
        assert!(
            !load.ok && load.errors[0].starts_with("the script does not load"),
            "{load:?}"
        );
        let errors = run(
            "function decodeUplink(i) { return {errors: ['fPort ' + i.fPort]}; }",
            7,
            &[],
        );
        assert_eq!(
            (errors.ok, errors.errors.as_slice()),
            (false, &["fPort 7".to_owned()][..])
        );
        let threw = run(
            "function decodeUplink(i) { throw new Error('nope'); }",
            1,
            &[],
        );
        assert!(threw.errors[0].contains("nope"), "{threw:?}");
        let refused = run(
            "function decodeUplink(i) { return {data: {'a b': 1}}; }",
            1,
            &[],
        );
        assert!(!refused.ok && refused.data.is_some(), "{refused:?}");
        assert!(
            refused.errors[0].starts_with("bydata would refuse this message"),
            "{refused:?}"
        );
        let endless = trial(
            Limits {
                cpu: std::time::Duration::from_millis(20),
                ..Limits::default()
            },
            "function decodeUplink(i) { while (true) {} }",
            1,
            &[],
            RECV,
        )
        .unwrap();
        assert!(endless.errors[0].contains("limit"), "{endless:?}");
    }
}
