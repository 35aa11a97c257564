//! The Semtech UDP packet forwarder protocol, version 2 (being built).
