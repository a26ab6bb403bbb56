#!/usr/bin/env bash
# Runs every test of the project on this machine: installs what the tests need (Debian packages
# for the real Samba AD DC and OpenLDAP servers, cargo-nextest if missing), checks formatting,
# lints, and runs all test targets. The tests start their servers on loopback themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh

echo "== format"
cargo fmt --all -- --check

echo "== lint"
cargo clippy --all-targets --locked -- -D warnings

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --all-targets --locked --no-fail-fast
    # nextest does not run doctests
    cargo test --doc --locked
else
    cargo test --all-targets --locked --no-fail-fast
fi
