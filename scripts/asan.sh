#!/usr/bin/env bash
# Runs the integration suites against an AddressSanitizer build of mod_rgi and the example apps,
# and fails if any Apache, daemon or child process reported a memory error.
# Usage: scripts/asan.sh [SUITE...]   (default: core hostile daemon auth faults sessions status axum soak)
# docs/reliability-asan.md explains the choices below and the last result.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
suites=("$@")
((${#suites[@]})) || suites=(core hostile daemon auth faults sessions status axum soak)

# Debian's apache2 is not instrumented and rustc links its (static) sanitizer runtime into
# executables only, so Apache gets gcc's shared runtime with LD_PRELOAD.
scripts/setup-debian.sh libasan8
runtime=/usr/lib/x86_64-linux-gnu/libasan.so.8
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal

# An explicit --target keeps build scripts and proc-macros uninstrumented; std is the prebuilt,
# uninstrumented one (its allocations still go through the runtime's malloc).
triple=x86_64-unknown-linux-gnu
out=$root/target/asan
release=$out/$triple/release
asan_build() {
  RUSTFLAGS="-Zsanitizer=address -Cforce-frame-pointers=yes" \
    cargo +nightly build --release --quiet --target "$triple" --target-dir "$out" "$@"
}
asan_build -p mod_rgi -p 'example-*'

# The unit tests of the module and the SDK are executables: rustc links the runtime into them, and
# leak checking is on (the allocations are all ours).
RUSTFLAGS="-Zsanitizer=address -Cforce-frame-pointers=yes" ASAN_OPTIONS=detect_leaks=1 \
  cargo +nightly test --release --quiet --target "$triple" --target-dir "$out" -p mod_rgi -p rgi --features rgi/full --lib

# The instrumentation must find everything it calls in the runtime Apache gets, down to the
# version check (__asan_version_mismatch_check_vN) that pins the shadow memory layout.
needed=$(nm -D --undefined-only "$release"/libmod_rgi.so "$release"/libexample_*.so | awk '$2 ~ /^__asan_/ {print $2}' | sort -u)
grep -qx '__asan_init' <<<"$needed" || { echo "libmod_rgi.so is not instrumented" >&2; exit 1; }
missing=$(comm -23 <(echo "$needed") <(nm -D --defined-only "$runtime" | awk '{print $3}' | sort -u))
[ -z "$missing" ] || { echo "$runtime lacks what the instrumentation calls:" $missing >&2; exit 1; }

# One log per process (asan.PID). Children and daemons run as www-data, so the directory is
# world-writable. Leak checking is off: Apache frees its pools wholesale at exit and keeps
# process-lifetime allocations, so LeakSanitizer reports those, not our bugs (tests/faults.rs
# and tests/soak.rs watch process footprints instead). Deadly signals are left to Apache (it logs them and the
# suites assert on them; tests/daemon.rs SIGSEGVs a daemon on purpose).
logs=$out/logs
rm -rf "$logs" && mkdir -p "$logs" && chmod 1777 "$logs"
export ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=0:halt_on_error=1:detect_stack_use_after_return=1:handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_abort=0"
export RGI_ARTIFACTS=$release RGI_APACHE_LD_PRELOAD=$runtime

# Proof that ASan is live in Apache: a canary app that reads one byte past a heap buffer must
# produce a heap-buffer-overflow report.
canary=$out/canary
mkdir -p "$canary/src"
cp Cargo.lock "$canary/"
cat >"$canary/Cargo.toml" <<TOML
[package]
name = "asan-canary"
version = "0.0.0"
edition = "2024"
publish = false
[lib]
crate-type = ["cdylib"]
[dependencies]
rgi = { path = "$root/rgi" }
[workspace]
TOML
cat >"$canary/src/lib.rs" <<'RS'
#[derive(Default)]
struct Canary;
impl rgi::App for Canary {
    fn call<'r>(&self, _req: rgi::Request<'r>) -> Result<rgi::Response<'r>, rgi::Error> {
        let buffer = vec![7u8; 8];
        // SAFETY: none: the canary reads one byte past the buffer on purpose, for ASan to catch.
        let past_end = unsafe { std::ptr::read_volatile(buffer.as_ptr().add(8)) };
        Ok(rgi::Response::text(format!("read {past_end}")))
    }
}
rgi::export!(Canary);
RS
asan_build --manifest-path "$canary/Cargo.toml" --offline
canary_root=$(mktemp -d /tmp/rgi-asan-canary-XXXX)
chmod 755 "$canary_root"
port=$((20000 + RANDOM % 20000))
cat >"$canary_root/httpd.conf" <<CONF
ServerRoot $canary_root
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile $canary_root/httpd.pid
DefaultRuntimeDir $canary_root
ErrorLog $canary_root/error.log
LoadModule mpm_prefork_module /usr/lib/apache2/modules/mod_mpm_prefork.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule rgi_module $release/libmod_rgi.so
$( [ "$(id -u)" -ne 0 ] || printf 'User www-data\nGroup www-data\n' )
RGIScriptAlias /canary $release/libasan_canary.so
<Directory $release>
  Require all granted
</Directory>
CONF
env -i PATH=/usr/sbin:/usr/bin:/bin LD_PRELOAD="$runtime" ASAN_OPTIONS="$ASAN_OPTIONS" \
  setsid /usr/sbin/apache2 -f "$canary_root/httpd.conf" -DFOREGROUND &
apache_pid=$!
trap 'kill -TERM "$apache_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -qs "resuming normal operations" "$canary_root/error.log" && break; sleep 0.1; done
grep -qs "resuming normal operations" "$canary_root/error.log" ||
  { echo "the canary's Apache did not start:" >&2; cat "$canary_root/error.log" >&2; exit 1; }
grep -q libasan "/proc/$apache_pid/maps" || { echo "the ASan runtime is not loaded in apache2" >&2; exit 1; }
curl -s -o /dev/null "http://127.0.0.1:$port/canary" || true
sleep 1
kill -TERM "$apache_pid" && wait "$apache_pid" || true
trap - EXIT
if ! grep -qs "ERROR: AddressSanitizer: heap-buffer-overflow" "$logs"/asan.*; then
  echo "ASan is not live: the canary's heap overflow was not reported" >&2
  cat "$canary_root/error.log" >&2
  exit 1
fi
cat "$logs"/asan.* >"$out/canary.log" && rm -rf "$canary_root" "$logs"/asan.*
echo "ASan is live in Apache: $(grep -m1 '^SUMMARY' "$out/canary.log") (the canary; $out/canary.log)" >&2

# The suites. Only Apache gets the runtime (the test binaries, Chromium, Redis… run as usual); an
# Apache without it could not even load the instrumented module (undefined symbol __asan_…).
start=$SECONDS
status=0
cargo test --release $(printf -- '--test %s ' "${suites[@]}") || status=$?
echo "suites ${suites[*]}: $((SECONDS - start)) s, cargo test exit status $status" >&2

reports=$(ls "$logs"/asan.* 2>/dev/null || true)
if [ -n "$reports" ]; then
  for r in $reports; do echo "=== $r" >&2; cat "$r" >&2; done
  echo "AddressSanitizer reported $(wc -w <<<"$reports") process(es)" >&2
  exit 1
fi
echo "AddressSanitizer: no reports" >&2
exit "$status"
