#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every unit, property and end-to-end test.
# Needs only the Rust toolchain pinned in rust-toolchain.toml; the end-to-end tests start the real bydata
# binary on free loopback ports, so nothing else has to be installed or running.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --all-targets --locked
