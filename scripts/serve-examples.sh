#!/usr/bin/env bash
# Builds everything and serves every example app with rgi-express on http://127.0.0.1:${PORT:-8000}/
# (/hello, /environ, /echo, /stream, /download, /panic, /misbehave, /whoami). Extra arguments go to
# `rgi-express start-server` (see `target/release/rgi-express start-server --help`). Ctrl-C stops.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
cargo build --release --workspace
release=$PWD/target/release
apps=()
for name in hello environ echo stream download panic misbehave whoami; do
  apps+=(--app "/$name" "$release/libexample_$name.so")
done
exec "$release/rgi-express" start-server "${apps[@]}" \
  --option download.file "$PWD/README.md" \
  --port "${PORT:-8000}" --log-to-terminal "$@"
