#!/usr/bin/env bash
# Renders the flagship performance, "The Sleep Gathering", to sleep-gathering.wav.
# The offline renderer needs only a Rust toolchain (built without the live audio feature,
# it uses no system libraries).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "Rust is needed: https://rustup.rs" >&2; exit 1; }
cargo run --release --locked --no-default-features -- render patches/sleep-gathering.toml \
  --performance patches/sleep-gathering.performance.toml -o sleep-gathering.wav "$@"
