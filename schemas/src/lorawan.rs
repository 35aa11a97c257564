//! LoRaWAN identifiers and keys shared by the network side (`ingest`) and the device side (`firmware-sim`):
//! the AES-128 keys of LoRaWAN 1.0.x, whose `Debug` never shows them, and the DevAddr.
use std::fmt;
use std::str::FromStr;

/// Why a hex identifier or key did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseHexError {
    #[error("expected {expected} hex digits, got {got} characters")]
    Length { expected: usize, got: usize },
    #[error("{ch:?} at offset {offset} is not a hex digit")]
    Digit { ch: char, offset: usize },
}

/// `N` bytes from `2N` hex digits, most significant first.
pub fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], ParseHexError> {
    if let Some((offset, ch)) = s.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(ParseHexError::Digit { ch, offset });
    }
    // Only ASCII is left, so bytes are characters.
    if s.len() != 2 * N {
        return Err(ParseHexError::Length {
            expected: 2 * N,
            got: s.len(),
        });
    }
    let nibble = |c: u8| char::from(c).to_digit(16).map_or(0, |d| d as u8);
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        if let &[high, low] = pair {
            *byte = nibble(high) << 4 | nibble(low);
        }
    }
    Ok(out)
}

macro_rules! aes_key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// `Debug` never shows the key; `FromStr` takes 32 hex digits, most significant byte first.
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name([u8; 16]);

        impl $name {
            /// The key from its 16 bytes, in the order they are usually written.
            pub const fn new(bytes: [u8; 16]) -> Self {
                Self(bytes)
            }

            /// The key's bytes; handle with care.
            pub const fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }

            /// 32 lower-case hex digits, as the bydata API takes keys.
            pub fn to_hex(&self) -> String {
                self.0.iter().map(|b| format!("{b:02x}")).collect()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl FromStr for $name {
            type Err = ParseHexError;
            fn from_str(s: &str) -> Result<Self, ParseHexError> {
                parse_hex(s).map(Self)
            }
        }
    };
}

aes_key!(
    /// The root key of an OTAA device (LoRaWAN 1.0.x); signs join-requests and encrypts join-accepts.
    AppKey
);
aes_key!(
    /// The network session key: the MIC of every data frame, and FRMPayload encryption on FPort 0.
    NwkSKey
);
aes_key!(
    /// The application session key: FRMPayload encryption on FPort 1..=255.
    AppSKey
);

/// A device address, as written (`26011bda`); in a frame it travels least significant byte first.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DevAddr(u32);

impl DevAddr {
    /// The address from its conventional 32-bit value.
    pub const fn new(value: u32) -> Self {
        Self(value)
    }

    /// The conventional 32-bit value (the crate's `u32::from(DevAddr)` is byte-reversed; this is not).
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The address from the four bytes as they appear in a frame.
    pub const fn from_wire(bytes: [u8; 4]) -> Self {
        Self(u32::from_le_bytes(bytes))
    }

    /// The four bytes as they appear in a frame.
    pub const fn to_wire(self) -> [u8; 4] {
        self.0.to_le_bytes()
    }
}

impl fmt::Display for DevAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl fmt::Debug for DevAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DevAddr({self})")
    }
}

impl FromStr for DevAddr {
    type Err = ParseHexError;
    fn from_str(s: &str) -> Result<Self, ParseHexError> {
        parse_hex(s).map(|b| Self(u32::from_be_bytes(b)))
    }
}
