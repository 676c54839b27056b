#!/usr/bin/env bash
# The whole test suite: formatting, crate boundaries, lints, then every test of every crate, closing with the
# total count of tests passed and failed.
source "$(dirname "$0")/env.sh"
# The plot tests lay the reports' SVG text out with a real font.
require_package fonts-dejavu-core "the plot tests lay out SVG text with it" \
  'ls /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf'
# The export tests validate Kubernetes manifests offline against the schemas it ships.
require_python_tool kubernetes-validate 1.37.0 "the export tests validate Kubernetes manifests with it"
# Docker comes up while the build runs (the Docker engine's test needs it; skipped without).
start_docker &
docker_started=$!
cargo fmt --all -- --check
bash scripts/check-deps.sh
cargo clippy --locked --workspace --all-targets -- -D warnings
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
wait "$docker_started"
cargo test --locked --workspace 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "%d passed, %d failed\n", passed, failed }' "$log"
exit "$status"
