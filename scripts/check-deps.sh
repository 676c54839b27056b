#!/usr/bin/env bash
# The crate boundaries the architecture promises, checked: consensus, mempool, miner, wallet
# and the RPC client build without the database engine, the peer-to-peer stack or the HTTP
# server; and a per-crate build of the store resolves RocksDB's dependencies exactly as the
# workspace build does, so it reuses the one RocksDB build instead of compiling a second.
source "$(dirname "$0")/env.sh"
status=0
for crate in quarry-chain quarry-mempool quarry-miner quarry-rpc quarry-wallet; do
  heavy="$(cargo tree --offline -e normal -p "$crate" --prefix none -f '{p}' |
    awk '{print $1}' | { grep -xE 'rocksdb|librocksdb-sys|libp2p|axum' || true; } | sort -u | tr '\n' ' ')"
  if [ -n "$heavy" ]; then
    echo "error: $crate depends on $heavy(see: cargo tree -e normal -p $crate -i <name>)" >&2
    status=1
  fi
done
workspace="$(bash scripts/rocksdb-features.sh --workspace)"
for crate in quarry-store quarry-node; do
  if ! diff <(echo "$workspace") <(bash scripts/rocksdb-features.sh -p "$crate") >&2; then
    echo "error: 'cargo build -p $crate' resolves RocksDB's dependencies differently from the" \
      "workspace (lines above) and would compile RocksDB again: add the features to" \
      "workspace-hack/Cargo.toml" >&2
    status=1
  fi
done
[ "$status" = 0 ] && echo "crate boundaries: ok"
exit "$status"
