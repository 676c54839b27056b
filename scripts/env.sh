# Shared set-up for Quarry's scripts: checks the toolchain and points every build at one cache
# outside the checkout, so CI and developers reuse the same compiled dependencies.
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo is not installed. Install Rust with rustup (https://rustup.rs), then rerun." >&2
  exit 1
fi

# Installs Debian package $1 (needed for $2) when the check $3 fails, as root through apt-get;
# otherwise says what to install.
require_package() {
  local package="$1" why="$2" check="$3"
  if eval "$check" >/dev/null 2>&1; then
    return
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing $package ($why)..." >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >&2
  else
    echo "error: $package is missing ($why). Install it first: sudo apt-get install $package" >&2
    exit 1
  fi
}

# Installs the PyPI package $1 (pinned version $2; needed for $3) when its command $1 is missing.
require_python_tool() {
  local package="$1" version="$2" why="$3"
  if "$package" --version >/dev/null 2>&1; then
    return
  fi
  if ! command -v python3 >/dev/null 2>&1; then
    echo "error: $package is missing ($why) and so is python3 to install it: install Python 3, then pip install $package==$version" >&2
    exit 1
  fi
  echo "Installing $package $version from PyPI ($why)..." >&2
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$package==$version" >&2
  hash -r
}

# The Docker engine's test needs a daemon: as root, installs Debian's docker.io and starts
# dockerd when none answers; elsewhere (or if it cannot start) that test says it was skipped.
start_docker() {
  if docker info >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note: no Docker daemon answers; the Docker engine's test will be skipped" >&2
    return 0
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    echo "Installing docker.io (the Docker engine's test runs containers)..." >&2
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io; } >/tmp/quarry-docker-install.log 2>&1; then
      echo "note: docker.io did not install (/tmp/quarry-docker-install.log); the Docker engine's test will be skipped" >&2
      return 0
    fi
  fi
  (dockerd >/tmp/quarry-dockerd.log 2>&1 &)
  for _ in $(seq 120); do
    if docker info >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  echo "note: dockerd did not start (/tmp/quarry-dockerd.log); the Docker engine's test will be skipped" >&2
}

# RocksDB's Rust bindings are generated with bindgen, which needs libclang at build time.
require_package libclang-dev "needed to build RocksDB's bindings" \
  'ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/x86_64-linux-gnu/libclang*.so*'

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/quarry/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
mkdir -p "$CARGO_TARGET_DIR"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
