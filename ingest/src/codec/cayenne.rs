//! Cayenne Low Power Payload (LPP), as documented by myDevices ("Cayenne Low Power Payload",
//! docs.mydevices.com/docs/lorawan/cayenne-lpp): a sequence of records, each a channel byte, a data-type byte
//! (the IPSO object id − 3200) and a big-endian value of a size fixed by the type. Besides the documented
//! types, the common extensions are read: voltage 116 to switch 142 as ElectronicCats/CayenneLPP defines them,
//! and concentration 125 and colour 135, the IPSO-derived ids (3325, 3335) that other device libraries write.
//! Not read (refused as unknown): the generic sensor (100) and ElectronicCats' own PPM 143 and RGB 144.
//!
//! Naming rule: a value is called `{kind}_{channel}` (`temperature_3`), and a type with several values adds
//! the axis: `accelerometer_6_x`, `gps_1_lat`, `gps_1_lon`, `gps_1_alt`, `colour_2_r`. This is the flat form
//! of ElectronicCats' LPP decoder for TTN, with its type names except `unix_time` (theirs is `time`, too
//! generic for a measurement). A payload that repeats a channel and type gives two values with one name;
//! refusing or keeping those is the caller's decision.
//!
//! Units are SenML symbols (RFC 8428, RFC 8798) where one exists. Accelerometer values are in g (standard
//! gravity) and gyrometer values in °/s, and have no unit: SenML's `g` is the gram and it has no °/s.
//!
//! A payload is all or nothing: an unknown type or a value cut short refuses the whole payload, naming the
//! byte offset of the record, because everything after an unknown type is unreadable anyway.

/// One value read from a payload.
#[derive(Debug, Clone, PartialEq)]
pub struct LppValue {
    pub channel: u8,
    /// The data type, e.g. `"temperature"`; see the module docs for the list.
    pub kind: &'static str,
    /// The measurement name, by the module's naming rule.
    pub name: String,
    /// A SenML unit symbol, e.g. `"Cel"`.
    pub unit: Option<&'static str>,
    pub value: f64,
}

/// Why a payload was refused. `offset` is the byte at which the offending record (its channel byte) starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CayenneError {
    #[error(
        "Cayenne LPP payload ends at byte {offset} after channel {channel}, before its data type"
    )]
    MissingType { offset: usize, channel: u8 },
    #[error(
        "unknown Cayenne LPP data type {data_type} (0x{data_type:02x}) on channel {channel} at byte {offset}"
    )]
    UnknownType {
        offset: usize,
        channel: u8,
        data_type: u8,
    },
    #[error(
        "Cayenne LPP {kind} (type {data_type}) on channel {channel} at byte {offset} needs {expected} bytes \
         of value, {got} left"
    )]
    Truncated {
        offset: usize,
        channel: u8,
        data_type: u8,
        kind: &'static str,
        expected: usize,
        got: usize,
    },
}

impl CayenneError {
    /// A stable, low-cardinality name for counting rejections by reason.
    pub fn code(&self) -> &'static str {
        match self {
            CayenneError::MissingType { .. } => "missing_type",
            CayenneError::UnknownType { .. } => "unknown_type",
            CayenneError::Truncated { .. } => "truncated",
        }
    }
}

/// Decodes a whole payload; values come out in payload order, axes in the order x, y, z / lat, lon, alt /
/// r, g, b. An empty payload has no values.
pub fn decode(bytes: &[u8]) -> Result<Vec<LppValue>, CayenneError> {
    let mut values = Vec::new();
    let mut offset = 0;
    while let Some((&channel, rest)) = bytes.get(offset..).and_then(<[u8]>::split_first) {
        let Some((&data_type, rest)) = rest.split_first() else {
            return Err(CayenneError::MissingType { offset, channel });
        };
        let Some(spec) = DataType::lookup(data_type) else {
            return Err(CayenneError::UnknownType {
                offset,
                channel,
                data_type,
            });
        };
        let size = spec.size();
        let Some(data) = rest.get(..size) else {
            return Err(CayenneError::Truncated {
                offset,
                channel,
                data_type,
                kind: spec.kind,
                expected: size,
                got: rest.len(),
            });
        };
        let mut data = data.iter();
        for axis in spec.axes {
            let raw = data
                .by_ref()
                .take(axis.width)
                .fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
            let raw = if axis.signed {
                // Sign-extend the top bit of a `width`-byte two's-complement number.
                let shift = 32 - 8 * axis.width as u32;
                f64::from(((raw << shift) as i32) >> shift)
            } else {
                f64::from(raw)
            };
            let name = if axis.suffix.is_empty() {
                format!("{}_{channel}", spec.kind)
            } else {
                format!("{}_{channel}_{}", spec.kind, axis.suffix)
            };
            values.push(LppValue {
                channel,
                kind: spec.kind,
                name,
                unit: axis.unit,
                // Division, not multiplication by 0.1: 272 / 10 is exactly the f64 nearest 27.2.
                value: raw / axis.divisor,
            });
        }
        offset += 2 + size;
    }
    Ok(values)
}

/// One value of a data type: its width in bytes (1 to 4), sign, the divisor from the raw integer to the
/// unit, and the unit.
#[derive(Debug, Clone, Copy)]
struct Axis {
    suffix: &'static str,
    width: usize,
    signed: bool,
    divisor: f64,
    unit: Option<&'static str>,
}

const fn axis(
    suffix: &'static str,
    width: usize,
    signed: bool,
    divisor: f64,
    unit: Option<&'static str>,
) -> Axis {
    Axis {
        suffix,
        width,
        signed,
        divisor,
        unit,
    }
}

const fn scalar(width: usize, signed: bool, divisor: f64, unit: Option<&'static str>) -> Axis {
    axis("", width, signed, divisor, unit)
}

#[derive(Debug)]
struct DataType {
    code: u8,
    kind: &'static str,
    axes: &'static [Axis],
}

impl DataType {
    fn lookup(code: u8) -> Option<&'static DataType> {
        TYPES.iter().find(|t| t.code == code)
    }

    fn size(&self) -> usize {
        self.axes.iter().map(|a| a.width).sum()
    }
}

const SIGNED: bool = true;
const UNSIGNED: bool = false;

/// Every data type read; "MSB" in the documentation means big-endian.
const TYPES: &[DataType] = &[
    // myDevices' documented types.
    DataType {
        code: 0,
        kind: "digital_input",
        axes: &[scalar(1, UNSIGNED, 1.0, None)],
    },
    DataType {
        code: 1,
        kind: "digital_output",
        axes: &[scalar(1, UNSIGNED, 1.0, None)],
    },
    DataType {
        code: 2,
        kind: "analog_input",
        axes: &[scalar(2, SIGNED, 100.0, None)],
    },
    DataType {
        code: 3,
        kind: "analog_output",
        axes: &[scalar(2, SIGNED, 100.0, None)],
    },
    DataType {
        code: 101,
        kind: "illuminance",
        axes: &[scalar(2, UNSIGNED, 1.0, Some("lx"))],
    },
    DataType {
        code: 102,
        kind: "presence",
        axes: &[scalar(1, UNSIGNED, 1.0, None)],
    },
    DataType {
        code: 103,
        kind: "temperature",
        axes: &[scalar(2, SIGNED, 10.0, Some("Cel"))],
    },
    DataType {
        code: 104,
        kind: "humidity",
        axes: &[scalar(1, UNSIGNED, 2.0, Some("%RH"))],
    },
    DataType {
        code: 113,
        kind: "accelerometer",
        axes: &[
            axis("x", 2, SIGNED, 1000.0, None),
            axis("y", 2, SIGNED, 1000.0, None),
            axis("z", 2, SIGNED, 1000.0, None),
        ],
    },
    DataType {
        code: 115,
        kind: "barometer",
        axes: &[scalar(2, UNSIGNED, 10.0, Some("hPa"))],
    },
    DataType {
        code: 134,
        kind: "gyrometer",
        axes: &[
            axis("x", 2, SIGNED, 100.0, None),
            axis("y", 2, SIGNED, 100.0, None),
            axis("z", 2, SIGNED, 100.0, None),
        ],
    },
    DataType {
        code: 136,
        kind: "gps",
        axes: &[
            axis("lat", 3, SIGNED, 10_000.0, Some("lat")),
            axis("lon", 3, SIGNED, 10_000.0, Some("lon")),
            axis("alt", 3, SIGNED, 100.0, Some("m")),
        ],
    },
    // The common extensions.
    DataType {
        code: 116,
        kind: "voltage",
        axes: &[scalar(2, UNSIGNED, 100.0, Some("V"))],
    },
    DataType {
        code: 117,
        kind: "current",
        axes: &[scalar(2, UNSIGNED, 1000.0, Some("A"))],
    },
    DataType {
        code: 118,
        kind: "frequency",
        axes: &[scalar(4, UNSIGNED, 1.0, Some("Hz"))],
    },
    DataType {
        code: 120,
        kind: "percentage",
        axes: &[scalar(1, UNSIGNED, 1.0, Some("%"))],
    },
    DataType {
        code: 121,
        kind: "altitude",
        axes: &[scalar(2, SIGNED, 1.0, Some("m"))],
    },
    DataType {
        code: 125,
        kind: "concentration",
        axes: &[scalar(2, UNSIGNED, 1.0, Some("ppm"))],
    },
    DataType {
        code: 128,
        kind: "power",
        axes: &[scalar(2, UNSIGNED, 1.0, Some("W"))],
    },
    DataType {
        code: 130,
        kind: "distance",
        axes: &[scalar(4, UNSIGNED, 1000.0, Some("m"))],
    },
    DataType {
        code: 131,
        kind: "energy",
        axes: &[scalar(4, UNSIGNED, 1000.0, Some("kWh"))],
    },
    DataType {
        code: 132,
        kind: "direction",
        axes: &[scalar(2, UNSIGNED, 1.0, Some("deg"))],
    },
    DataType {
        code: 133,
        kind: "unix_time",
        axes: &[scalar(4, UNSIGNED, 1.0, Some("s"))],
    },
    DataType {
        code: 135,
        kind: "colour",
        axes: &[
            axis("r", 1, UNSIGNED, 1.0, None),
            axis("g", 1, UNSIGNED, 1.0, None),
            axis("b", 1, UNSIGNED, 1.0, None),
        ],
    },
    DataType {
        code: 142,
        kind: "switch",
        axes: &[scalar(1, UNSIGNED, 1.0, None)],
    },
];

#[cfg(test)]
#[path = "cayenne_tests.rs"]
mod tests;
