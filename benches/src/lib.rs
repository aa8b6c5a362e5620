//! Benchmarks live in `benches/overhead.rs`; see BENCHMARKS.md.
