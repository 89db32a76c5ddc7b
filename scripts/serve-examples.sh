#!/usr/bin/env bash
# Builds everything and serves every example app in a private Apache on http://127.0.0.1:${PORT:-8000}/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
cargo build --release --workspace
root=$(mktemp -d /tmp/rgi-examples.XXXXXX)
chmod 755 "$root"
port=${PORT:-8000}
release=$PWD/target/release
user_lines=""
[ "$(id -u)" -eq 0 ] && user_lines=$'User www-data\nGroup www-data'
{
  cat <<CONF
ServerRoot $root
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile $root/httpd.pid
DefaultRuntimeDir $root
ErrorLog /dev/stderr
LogLevel info
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule rgi_module $release/libmod_rgi.so
$user_lines
<Directory $release>
  Require all granted
</Directory>
CONF
  for lib in "$release"/libexample_*.so; do
    name=$(basename "$lib" .so); name=${name#libexample_}
    echo "RGIScriptAlias /$name $lib"
  done
  echo "<Location /download>"
  echo "  RGIOption download.file $PWD/README.md"
  echo "</Location>"
} > "$root/httpd.conf"
echo "serving the examples on http://127.0.0.1:$port/ (hello, environ, echo, stream, download, panic, misbehave); Ctrl-C stops" >&2
exec setsid -w /usr/sbin/apache2 -f "$root/httpd.conf" -DFOREGROUND
