//! LoRaWAN: the Semtech UDP packet forwarder protocol (`semtech`) and LoRaWAN 1.0.x frames and sessions
//! (`frame`). Pure functions over bytes, so the UDP listener and the pipeline stay thin; nothing here panics
//! on outside bytes (property-tested).
pub mod frame;
pub mod listener;
pub mod semtech;
