#!/usr/bin/env bash
# Runs every test: unit tests, doc tests and the integration suites against a real Apache.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh wrk valgrind libapache2-mod-wsgi-py3
cargo build --release --workspace
RGI_SKIP_BUILD=1 cargo test --release --workspace "$@"
# The benchmark's smoke run (about a minute): every peer still builds, starts, answers and is measured.
if [ $# -eq 0 ]; then
  bench/run --smoke >/dev/null
fi
