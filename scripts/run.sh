#!/usr/bin/env bash
# The main job. For now: the chain self-check (mine, reorganise, verify against a replay).
# Extra arguments go to `quarry-testnet selfcheck`, e.g. `--blocks 2000 --reorg-depth 50`.
source "$(dirname "$0")/env.sh"
cargo run --release --locked -p quarry-testnet -- selfcheck "$@"
