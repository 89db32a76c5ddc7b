#!/usr/bin/env bash
# Runs every test: unit tests, doc tests and the integration suites against a real Apache.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
cargo build --release --workspace
RGI_SKIP_BUILD=1 cargo test --release --workspace "$@"
