//! LoRaWAN 1.0.x frames: MIC, 32-bit frame counters, decryption, joins (being built).
