//! Cayenne LPP payloads (being built).
