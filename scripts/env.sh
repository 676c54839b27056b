# Shared set-up for Quarry's scripts: checks the toolchain and points every build at one cache
# outside the checkout, so CI and developers reuse the same compiled dependencies.
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo is not installed. Install Rust with rustup (https://rustup.rs), then rerun." >&2
  exit 1
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/quarry/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
mkdir -p "$CARGO_TARGET_DIR"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
