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

echo "== build (the C ABI tests load the cdylib, the crash test runs the CLI)"
cargo build --locked --lib --bins

echo "== benchmarks (smoke run at small sizes; real figures: cargo bench)"
cargo test --benches --locked

echo "== doctests"
cargo test --doc --locked

echo "== tests"
# Last, so that the run ends with the test runner's summary.
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --lib --bins --tests --locked --no-fail-fast
else
    cargo test --lib --bins --tests --locked --no-fail-fast
fi
