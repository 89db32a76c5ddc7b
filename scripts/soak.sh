#!/usr/bin/env bash
# The long soak (tests/soak.rs, soak_long): REQUESTS requests (default 1,000,000) from 8 clients,
# mixed across the example apps, half served embedded and half by a daemon process group, every
# answer checked in full; Apache's processes are sampled between 20 rounds and their memory and
# descriptors must stay within ±5 % after the first two. Not part of CI (soak_smoke is).
# Usage: scripts/soak.sh [REQUESTS]     (the log is kept in target/soak.log)
set -euo pipefail
cd "$(dirname "$0")/.."
export RGI_SOAK_REQUESTS=${1:-1000000}
cargo build --release --workspace
RGI_SKIP_BUILD=1 cargo test --release --test soak soak_long -- --ignored --nocapture 2>&1 | tee target/soak.log
