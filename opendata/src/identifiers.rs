//! Registered identifiers (device ids, DevEUIs, DevAddrs, JoinEUIs, gateway EUIs) and the search for them,
//! in any spelling, in published values.
use std::collections::BTreeSet;

/// Every registered identifier, ready to be looked for in published values.
#[derive(Debug)]
pub(crate) struct Identifiers {
    /// Device ids, lower-case: matched whole.
    slugs: BTreeSet<String>,
    /// DevEUIs, DevAddrs, JoinEUIs, gateway EUIs as lower-case hex digits: matched anywhere in a value
    /// folded to its letters and digits (`A8-40-41-…`, `eui-a840…`, `0xA840…` all fold to contain them).
    hex: Vec<String>,
}

impl Identifiers {
    pub(crate) fn new(all: Vec<String>) -> Self {
        let is_hex = |s: &str| s.len() >= 8 && s.bytes().all(|b| b.is_ascii_hexdigit());
        let mut slugs = BTreeSet::new();
        let mut hex = Vec::new();
        for id in all {
            let id = id.to_ascii_lowercase();
            if is_hex(&id) {
                hex.push(id.clone());
            }
            slugs.insert(id);
        }
        Self { slugs, hex }
    }

    pub(crate) fn exposed_by(&self, value: &str) -> bool {
        let lower = value.to_ascii_lowercase();
        // Device ids as words (`devices/cnt-dokk1/up`, `cnt-dokk1 entrance`): split on what a slug cannot hold.
        let slug_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if lower
            .split(|c: char| !slug_char(c))
            .any(|w| self.slugs.contains(w))
        {
            return true;
        }
        // Registered radio ids in any spelling: looked for in the value folded to letters and digits.
        let folded: String = lower.chars().filter(char::is_ascii_alphanumeric).collect();
        if self.hex.iter().any(|h| folded.contains(h.as_str())) {
            return true;
        }
        // An EUI-64 nobody registered here (a ChirpStack or TTS device's): a word that is 16 hex digits once
        // its separators and a `0x` or `eui` prefix are removed. UUIDs (32), dates and decimals are not.
        lower
            .split(|c: char| {
                c.is_whitespace() || matches!(c, '/' | ',' | ';' | '|' | '=' | '(' | ')')
            })
            .any(|w| {
                let f: String = w.chars().filter(char::is_ascii_alphanumeric).collect();
                let f = f
                    .strip_prefix("0x")
                    .or_else(|| f.strip_prefix("eui"))
                    .unwrap_or(&f);
                f.len() == 16 && f.bytes().all(|b| b.is_ascii_hexdigit())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::Identifiers;

    #[test]
    fn identifiers_are_found_in_any_spelling() {
        let ids = Identifiers::new(vec![
            "cnt-dokk1".into(),
            "a84041000181c0de".into(),
            "26011bcd".into(),
        ]);
        for exposed in [
            "cnt-dokk1",
            "CNT-DOKK1",
            "devices/cnt-dokk1/up",
            "cnt-dokk1 entrance",
            "a84041000181c0de",
            "A8-40-41-00-01-81-C0-DE",
            "A8:40:41:00:01:81:C0:DE",
            "eui-a84041000181c0de",
            "0xA84041000181C0DE",
            "counter/a84041000181c0de/up",
            "26011BCD",
            "addr 26 01 1b cd",
            // Shaped like an EUI-64 though nobody registered it.
            "70B3D57ED005FFFF",
        ] {
            assert!(ids.exposed_by(exposed), "{exposed}");
        }
        for fine in [
            "dokk1",
            "cnt",
            "building-7",
            "2026-03-01",
            "2026-03-01 12:00:00.123",
            "Aarhus Ø",
            "1234567",
            "cafe facade deaf bead",
            // A Danish address or building id (DAR/BBR) is a UUID.
            "0a3f50a0-75eb-32b8-e044-0003ba298018",
        ] {
            assert!(!ids.exposed_by(fine), "{fine}");
        }
    }
}
