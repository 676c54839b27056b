#!/usr/bin/env bash
# The main job: a local testnet of real quarryd processes with a live status table (Ctrl-C
# stops it). Arguments go to `quarry-testnet`, e.g.
#   ./scripts/run.sh up --nodes 6 --miners 3 --topology ring
#   ./scripts/run.sh attack double-spend --attacker-share 0.3 --confirmations 1,2,3 --trials 20
#   ./scripts/run.sh selfcheck
# It runs the development build (dependencies, hashing and validation optimised), which shares
# RocksDB and every other dependency with the test suite, and builds only when a source file is
# newer than the binaries. Relative paths in the arguments are the caller's.
caller="$PWD"
source "$(dirname "$0")/env.sh"
bin="$CARGO_TARGET_DIR/debug"
binaries=(quarryd quarry-cli quarry-wallet quarry-testnet)
stale=0
for name in "${binaries[@]}"; do
  if [ ! -x "$bin/$name" ] ||
    [ -n "$(git ls-files -z 2>/dev/null | xargs -0 -r find 2>/dev/null -newer "$bin/$name" -print -quit)" ]; then
    stale=1
  fi
done
if [ "$stale" = 1 ]; then
  cargo build --locked --workspace --bins
fi
if [ "$#" -eq 0 ]; then
  set -- up
fi
cd "$caller"
exec "$bin/quarry-testnet" "$@"
