//! Decoding for the journal's other readers: the same decoders the pipeline holds (built-in codecs and the
//! sandboxed JavaScript ones, with the pipeline's limits and time rules), for a consumer that reads the
//! journal with its own cursor — the forwarder of data targets — and wants each uplink's readings without
//! storing them. The pipeline itself is unchanged by this.
use crate::codec::{DecodeContext, DecodeError};
use crate::decoders::Decoders;
use bydata_schemas::{Reading, Uplink};
use bydata_store::{Device, SharedRegistry};

/// What an uplink decoded to.
#[derive(Debug, Clone, PartialEq)]
pub struct UplinkReadings {
    pub readings: Vec<Reading>,
    /// The codec (and version) that produced them, e.g. `senml` or `js:elsys@3`.
    pub codec: String,
}

/// A device's uplinks decoded as the pipeline decodes them. Holds loaded script codecs: keep one per reader.
#[derive(Debug)]
pub struct UplinkDecoder {
    decoders: Decoders,
    max_future: i64,
}

impl UplinkDecoder {
    /// Call on the runtime; [`UplinkDecoder::decode`] then runs on a blocking thread.
    pub fn new(registry: SharedRegistry, config: &crate::Config) -> Self {
        Self {
            decoders: Decoders::new(registry, config.codec_limits()),
            max_future: i64::from(config.max_future_secs) * 1_000_000_000,
        }
    }

    /// Decodes one uplink of `device` with its codec. Blocking: a script codec may run for its CPU limit.
    pub fn decode(
        &mut self,
        device: &Device,
        uplink: &Uplink,
    ) -> Result<UplinkReadings, DecodeError> {
        let ctx = DecodeContext {
            max_future: self.max_future,
            ..DecodeContext::new(uplink.received_at)
        };
        let decoded = self.decoders.decode(&device.codec, uplink, &ctx)?;
        Ok(UplinkReadings {
            readings: decoded.readings,
            codec: decoded.label,
        })
    }
}
