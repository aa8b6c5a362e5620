#!/usr/bin/env bash
# Machine code each annotated function adds, in a release build: for async
# and for blocking functions, two binaries with the same 64 functions, one
# with #[database_call] on each, compared by the size of their .text.
# Each function's future is boxed behind `dyn Future`, so its code is
# compiled once, as its own poll function, and not inlined into a caller
# (an awaited future's poll is inlined into its caller's, once per caller).
#   bash benches/code_size.sh     (from the workspace root)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p resilience-bench \
  --example code_size_async --example code_size_async_plain \
  --example code_size_blocking --example code_size_blocking_plain
text() { size -A "target/release/examples/$1" | awk '$1 == ".text" { print $2 }'; }
for kind in async blocking; do
  with=$(text "code_size_$kind")
  without=$(text "code_size_${kind}_plain")
  echo "$kind fn: .text $with with the attribute, $without without: $(( (with - without) / 64 )) bytes per function"
done
