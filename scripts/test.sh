#!/usr/bin/env bash
# Runs every test: formatting and lints, unit and integration tests (rendered audio measured
# on real output), live tests on a private JACK server, doc tests, examples and the benchmark
# build. Installs what it needs (Debian packages, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "Rust is needed: https://rustup.rs" >&2; exit 1; }

packages="pkg-config libasound2-dev libjack-jackd2-dev jackd2 libasound2-plugins liblo-tools sox sndfile-tools espeak-ng python3 python3-venv"
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

# Python senders for the live tests: python-osc and python-rtmidi, whose Linux wheels carry
# its JACK API (without a wheel for this Python, pip builds it from source, which finds
# libjack-jackd2-dev); the tests find this Python through TAPESTRY_TEST_PYTHON
venv=target/py-venv
check_venv() {
  "$venv/bin/python" -c 'import pythonosc, rtmidi; assert rtmidi.API_UNIX_JACK in rtmidi.get_compiled_api(), "python-rtmidi without JACK"' 2>/dev/null
}
if ! check_venv; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q python-osc python-rtmidi
  check_venv || { echo "python-rtmidi has no JACK API in $venv" >&2; exit 1; }
fi
export TAPESTRY_TEST_PYTHON="$PWD/$venv/bin/python"

rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo fmt --check
cargo clippy --locked --all-targets --features jack -- -D warnings
cargo clippy --locked --all-targets --features jack,alloc-check -- -D warnings
# alloc-check: the live tests count allocations inside the audio and MIDI callbacks
cargo test --locked --features jack,alloc-check
cargo build --locked --release --examples --benches
