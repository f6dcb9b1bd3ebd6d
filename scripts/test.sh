#!/usr/bin/env bash
# Runs every test: formatting and lints, unit and integration tests (rendered audio measured
# on real output), live tests on a private JACK server, doc tests, examples and the benchmark
# build. Installs what it needs (Debian packages, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "Rust is needed: https://rustup.rs" >&2; exit 1; }

packages="pkg-config libasound2-dev libjack-jackd2-dev jackd2 libasound2-plugins liblo-tools sox espeak-ng"
missing=$(for p in $packages; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "please install: $missing (e.g. sudo apt-get install $missing)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  # shellcheck disable=SC2086
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
fi

rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo fmt --check
cargo clippy --locked --all-targets --features jack -- -D warnings
cargo test --locked --features jack
cargo build --locked --release --examples --benches
