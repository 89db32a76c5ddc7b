#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 600) with cargo-fuzz, one after the other,
# keeping new corpus entries in fuzz/corpus/<target>/ (commit them: tests/fuzz_corpus.rs replays
# them on every test run). After each run the corpus is minimized (cargo fuzz cmin); a corpus still
# over 100 KB is minimized again on edge coverage alone, so the repository stays small.
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP lets the stable toolchain provide them.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cd fuzz
targets=("$@")
((${#targets[@]})) || mapfile -t targets < <(cargo fuzz list)
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== fuzzing $t for ${seconds}s" >&2
  cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$seconds" -max_len=20000 -print_final_stats=1 2>&1 |
    grep -E "^(Done|stat::number_of_executed_units|==|SUMMARY)|panicked|ERROR" || true
  test -z "$(ls artifacts/"$t" 2>/dev/null)" || { echo "crash found in $t: see fuzz/artifacts/$t" >&2; exit 1; }
  cargo fuzz cmin -O "$t" "corpus/$t" -- -max_len=20000 >/dev/null 2>&1
  if (($(cat "corpus/$t"/* | wc -c) > 100000)); then
    cargo fuzz cmin -O "$t" "corpus/$t" -- -max_len=20000 -use_counters=0 >/dev/null 2>&1
  fi
  echo "   corpus: $(ls "corpus/$t" | wc -l) inputs, $(cat "corpus/$t"/* | wc -c) bytes" >&2
done
