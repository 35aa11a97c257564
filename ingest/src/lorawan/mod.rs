//! LoRaWAN: the Semtech UDP packet forwarder protocol (`semtech`), LoRaWAN 1.0.x frames and sessions
//! (`frame`, up and down) and the EU868 tables class A downlinks need (`region`). Pure functions over bytes,
//! so the UDP listener and the pipeline stay thin; nothing here panics on outside bytes (property-tested).
pub mod frame;
pub mod listener;
pub mod region;
pub mod semtech;
