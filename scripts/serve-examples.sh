#!/usr/bin/env bash
# Builds everything and serves every example app with rgi-express on http://127.0.0.1:${PORT:-8000}/
# (/hello, /environ, /echo, /stream, /download, /panic, /misbehave, /whoami, /sessions,
# /session_counter, /forms). Extra arguments go to `rgi-express start-server` (see
# `target/release/rgi-express start-server --help`). Ctrl-C stops.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
cargo build --release --workspace
release=$PWD/target/release
apps=()
for name in hello environ echo stream download panic misbehave whoami sessions session_counter forms; do
  apps+=(--app "/$name" "$release/libexample_$name.so")
done
# A fresh session secret per run: the demo's sessions end with the server.
secret=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
exec "$release/rgi-express" start-server "${apps[@]}" \
  --option download.file "$PWD/README.md" \
  --option session.secret "$secret" \
  --port "${PORT:-8000}" --log-to-terminal "$@"
