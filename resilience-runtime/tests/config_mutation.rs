//! The fuzzer's job in miniature, for CI: the project's configurations and
//! the hostile cases in `fuzz/seeds`, mutated at random, must give a runtime
//! or a short located error, never a panic. `fuzz/run.sh` runs the real
//! coverage-guided fuzzer for minutes; this catches a regression in seconds
//! without nightly tools.

use proptest::prelude::*;
use resilience_runtime::Runtime;

const SEEDS: [&str; 14] = [
    include_str!("../../config/enhanced_config.yaml"),
    include_str!("../../fuzz/seeds/anchors.yaml"),
    include_str!("../../fuzz/seeds/bad_names.yaml"),
    include_str!("../../fuzz/seeds/duplicate_name.yaml"),
    include_str!("../../fuzz/seeds/huge_window.yaml"),
    include_str!("../../fuzz/seeds/inapplicable.yaml"),
    include_str!("../../fuzz/seeds/many_workers.yaml"),
    include_str!("../../fuzz/seeds/multi_doc.yaml"),
    include_str!("../../fuzz/seeds/overflow_workers.yaml"),
    include_str!("../../fuzz/seeds/retry_contradiction.yaml"),
    include_str!("../../fuzz/seeds/tilde.yaml"),
    include_str!("../../fuzz/seeds/tiny_timeout.yaml"),
    include_str!("../../fuzz/seeds/wrong_shape.yaml"),
    "resilience:\n  external_dependencies:\n    db: { type: database, max_concurrent: 3 }\n",
];

/// Pieces a mutation inserts: YAML syntax, the schema's words, and values at
/// and beyond every bound.
const PIECES: [&str; 40] = [
    ":",
    " ",
    "\n",
    "  ",
    "- ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "~",
    "&a ",
    "*a",
    "<<: ",
    "'",
    "\"",
    "!!str ",
    "#",
    "---\n",
    "\t",
    "0",
    "-1",
    "1e-10",
    "1e308",
    "NaN",
    ".inf",
    "4294967295",
    "18446744073709551616",
    "1000001",
    "0.0005",
    "86401",
    "true",
    "null",
    "type: ",
    "thread_pool",
    "max_workers: ",
    "timeout_seconds: ",
    "circuit_breaker_window_size: ",
    "retry_on: ",
    "external_dependencies:\n",
];

#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, usize),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Flip(usize, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 0..PIECES.len()).prop_map(|(at, p)| Edit::Insert(at, p)),
        (any::<usize>(), 1..40usize).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), 1..200usize).prop_map(|(at, n)| Edit::Duplicate(at, n)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Edit::Flip(at, b)),
    ]
}

/// Applies `edits` to `text`, byte-wise; an edit that breaks UTF-8 is kept
/// lossily, as the file reader would refuse it earlier.
fn mutate(text: &str, edits: &[Edit]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for e in edits {
        let len = bytes.len().max(1);
        match *e {
            Edit::Insert(at, p) => {
                let at = at % len;
                bytes.splice(at..at, PIECES[p].bytes());
            }
            Edit::Delete(at, n) => {
                let at = at % len;
                let end = (at + n).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            Edit::Duplicate(at, n) => {
                let at = at % len;
                let end = (at + n).min(bytes.len());
                let copy = bytes[at.min(end)..end].to_vec();
                bytes.splice(end..end, copy);
            }
            Edit::Flip(at, b) => {
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    bytes[at] = b;
                }
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_mutated_configuration_is_a_runtime_or_a_short_error(
        seed in 0..SEEDS.len(),
        edits in prop::collection::vec(edit(), 1..8),
    ) {
        let yaml = mutate(SEEDS[seed], &edits);
        match Runtime::from_yaml_str(&yaml) {
            Ok(rt) => {
                let _ = rt.health_snapshot();
            }
            Err(e) => {
                let message = e.to_string();
                prop_assert!(!message.is_empty());
                prop_assert!(message.len() < 16 * 1024, "a {}-byte message", message.len());
            }
        }
    }
}
