#!/usr/bin/env bash
# Prints the packages of RocksDB's dependency tree (its build tools included) with the features
# Cargo resolves for them when it builds the selection given as arguments (`--workspace`,
# `-p quarry-store`). Two selections that print the same lines share one RocksDB build.
set -euo pipefail
closure="$(cargo tree --offline -p librocksdb-sys -e normal,build --prefix none -f '{p}' \
  | awk '{print $1 " " $2}' | sort -u)"
cargo tree --offline "$@" -e normal,build --prefix none -f '{p} [{f}]' \
  | sed 's/ (\*)$//; s/ (proc-macro)$//' | sort -u \
  | awk 'NR == FNR { want[$1 " " $2] = 1; next } ($1 " " $2) in want' <(echo "$closure") -
