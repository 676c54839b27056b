#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every test of every crate.
source "$(dirname "$0")/env.sh"
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo test --locked --workspace
