use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A 64-bit IEEE EUI (a LoRaWAN gateway's, a DevEUI, a JoinEUI), written as 16 hex digits. Input may be upper
/// or lower case; it is kept and shown in lower case, so one EUI has one spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Eui64([u8; 8]);

impl Eui64 {
    pub fn new(value: &str) -> Result<Self> {
        let invalid = |reason| Error::Invalid {
            kind: "EUI-64",
            value: value.chars().take(40).collect(),
            reason,
        };
        if value.len() != 16 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid("must be 16 hex digits, e.g. 0016c001ff10a235"));
        }
        let mut out = [0u8; 8];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(value.get(2 * i..2 * i + 2).unwrap_or("zz"), 16)
                .map_err(|_| invalid("must be 16 hex digits"))?;
        }
        Ok(Self(out))
    }

    /// From the bytes in the order they are written (most significant first).
    pub fn from_bytes(bytes: [u8; 8]) -> Self {
        Self(bytes)
    }

    pub fn to_bytes(self) -> [u8; 8] {
        self.0
    }
}

impl fmt::Display for Eui64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl FromStr for Eui64 {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl TryFrom<String> for Eui64 {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::new(&s)
    }
}

impl From<Eui64> for String {
    fn from(v: Eui64) -> String {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::Eui64;

    #[test]
    fn one_spelling_per_eui() {
        let a = Eui64::new("0016C001FF10A235").expect("upper case");
        let b: Eui64 = "0016c001ff10a235".parse().expect("lower case");
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "0016c001ff10a235");
        assert_eq!(a.to_bytes()[0], 0x00);
        assert_eq!(a.to_bytes()[7], 0x35);
        for bad in [
            "",
            "0016c001ff10a23",
            "0016c001ff10a2355",
            "0016c001ff10a23g",
            "+016c001ff10a235",
        ] {
            assert!(Eui64::new(bad).is_err(), "{bad}");
        }
        let json = serde_json::to_string(&a).expect("json");
        assert_eq!(json, "\"0016c001ff10a235\"");
        assert!(serde_json::from_str::<Eui64>("\"zz\"").is_err());
    }
}
