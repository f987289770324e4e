# Shared settings for the scripts in this folder (sourced, not run).
# Build caches live outside the clone so a fresh clone reuses them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cover/target}"
# The wasm build has its own target dir so the two feature sets never contend.
export COVER_WASM_TARGET_DIR="${COVER_WASM_TARGET_DIR:-$HOME/.cache/cover/target-wasm}"
export PATH="$HOME/.cargo/bin:$PATH"
# wasm-opt for the release bundle: the npm package `binaryen`, run by node
# (installed by scripts/setup). Not Debian's binaryen: its wasm-opt 108 produces
# a bundle that fails at start-up and never hydrates.
BINARYEN_VERSION="132.0.0"
BINARYEN_DIR="${COVER_BINARYEN_DIR:-$HOME/.cache/cover/binaryen}"
WASM_OPT="$BINARYEN_DIR/node_modules/binaryen/bin/wasm-opt"
# wasm-split-cli (crate wasm_split_cli_support) cuts the lazy routes out of the
# browser bundle into their own chunks (installed by scripts/setup). Its 0.2
# line reads the split points that leptos's `#[lazy]` helpers,
# wasm_split_helpers 0.2 in Cargo.lock, write; bump both together.
WASM_SPLIT_VERSION="0.2.4"
# Builds here are one-shot (CI, fresh clones): incremental caches only cost disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# Site settings come from Leptos.toml (the one source of truth).
leptos_setting() {
  sed -n "s/^$1 *= *\"\\(.*\\)\"/\\1/p" "$ROOT/Leptos.toml" | head -n 1
}
OUTPUT_NAME="$(leptos_setting output-name)"
SITE_ROOT="${LEPTOS_SITE_ROOT:-$(leptos_setting site-root)}"
PKG_DIR="$(leptos_setting site-pkg-dir)"
STYLE_FILE="$(leptos_setting style-file)"
ASSETS_DIR="$(leptos_setting assets-dir)"
export LEPTOS_OUTPUT_NAME="$OUTPUT_NAME"

log() { printf '\n==> [%s] %s\n' "$(date +%T)" "$*"; }
