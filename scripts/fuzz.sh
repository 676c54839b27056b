#!/usr/bin/env bash
# Fuzzes every decoder reachable from outside the node (fuzz/fuzz_targets) with cargo-fuzz and
# libFuzzer under AddressSanitizer, SECONDS per target (default 60), and prints a table of
# executions and crashes. Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
# Nightly-only flags run on the stable toolchain through RUSTC_BOOTSTRAP=1. The seeds in
# fuzz/corpus (from the golden vectors) are copied to a working corpus outside the checkout;
# crashes are kept in fuzz/artifacts/<target>/.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

seconds="${1:-60}"
shift || true
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "Installing cargo-fuzz..." >&2
  cargo install cargo-fuzz --locked >&2
fi
export RUSTC_BOOTSTRAP=1
# The sanitizer build must not share the test build's cache: its flags differ.
export CARGO_TARGET_DIR="$HOME/.cache/quarry/fuzz-target"
corpus_root="$HOME/.cache/quarry/fuzz-corpus"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi

echo "Building the fuzz targets (the first build compiles RocksDB with them)..." >&2
cargo fuzz build >&2
printf '%-16s %14s %10s %8s\n' target executions exec/s crashes
status=0
for target in "${targets[@]}"; do
  corpus="$corpus_root/$target"
  mkdir -p "$corpus"
  cp -n fuzz/corpus/"$target"/* "$corpus"/ 2>/dev/null || true
  log="$corpus_root/$target.log"
  if cargo fuzz run "$target" "$corpus" -- -max_total_time="$seconds" -rss_limit_mb=4096 \
      -timeout=10 >"$log" 2>&1; then
    crashes=0
  else
    crashes=1
    status=1
  fi
  runs=$(grep -oE 'Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' | tail -1)
  runs=${runs:-$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')}
  printf '%-16s %14s %10s %8s\n' "$target" "${runs:-?}" "$(( ${runs:-0} / (seconds > 0 ? seconds : 1) ))" "$crashes"
  if [ "$crashes" -ne 0 ]; then
    echo "  see $log and fuzz/artifacts/$target/" >&2
  fi
done
exit $status
