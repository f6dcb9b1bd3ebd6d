#!/usr/bin/env bash
# Runs every test: formatting and lints, unit and integration tests (rendered audio measured
# on real output), doc tests and the examples. Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "Rust is needed: https://rustup.rs" >&2; exit 1; }
rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked
cargo build --locked --release --examples --benches
