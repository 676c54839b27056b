#!/usr/bin/env bash
# The main job: a local testnet of real quarryd processes with a live status table (Ctrl-C
# stops it). Arguments go to `quarry-testnet`, e.g.
#   ./scripts/run.sh up --nodes 6 --miners 3 --topology ring
#   ./scripts/run.sh attack double-spend --attacker-share 0.3 --confirmations 1,2,3 --trials 20
#   ./scripts/run.sh selfcheck
source "$(dirname "$0")/env.sh"
cargo build --release --locked -p quarry-node -p quarry-wallet -p quarry-testnet --bins
bin="$CARGO_TARGET_DIR/release"
if [ "$#" -eq 0 ]; then
  set -- up
fi
exec "$bin/quarry-testnet" "$@"
