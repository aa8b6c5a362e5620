#!/usr/bin/env bash
# Fuzzes Runtime::from_yaml_str for a while (default 600 s) with libFuzzer
# through cargo-fuzz, starting from fuzz/seeds. Not run by CI: it needs the
# nightly-only sanitizer flag, which RUSTC_BOOTSTRAP unlocks on the stable
# toolchain this project pins. Prints the figures RELIABILITY.md records.
#
#   cargo install cargo-fuzz --locked   # once
#   fuzz/run.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-600}
cargo fuzz --version >/dev/null 2>&1 || {
  echo "error: cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
  exit 1
}
mkdir -p corpus/config artifacts/config
cp -n seeds/* corpus/config/ 2>/dev/null || true
export RUSTC_BOOTSTRAP=1
# One job per core; -rss_limit_mb catches a config that blows memory up.
cargo fuzz run config corpus/config -- \
  -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
  -print_final_stats=1 2>&1 | tee run.log | grep -E "^(#[0-9]+ +(DONE|pulse)|stat::|==|SUMMARY|Done)" || true
crashes=$(find artifacts/config -type f | wc -l)
echo "inputs kept in the corpus: $(find corpus/config -type f | wc -l); crash, leak, timeout or OOM artifacts: $crashes"
[ "$crashes" -eq 0 ]
