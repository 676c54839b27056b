# Shared set-up for Quarry's scripts: checks the toolchain and points every build at one cache
# outside the checkout, so CI and developers reuse the same compiled dependencies.
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo is not installed. Install Rust with rustup (https://rustup.rs), then rerun." >&2
  exit 1
fi

# RocksDB's Rust bindings are generated with bindgen, which needs libclang at build time.
if ! ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing libclang-dev (needed to build RocksDB's bindings)..." >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev >&2
  else
    echo "error: libclang is missing. Install it first: sudo apt-get install libclang-dev" >&2
    exit 1
  fi
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/quarry/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
mkdir -p "$CARGO_TARGET_DIR"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
