//! Any bytes as a configuration: `Runtime::from_yaml_str` must return a
//! runtime or a located error, never panic, hang or exhaust memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(yaml) = std::str::from_utf8(data) {
        match resilience_runtime::Runtime::from_yaml_str(yaml) {
            Ok(rt) => {
                // A runtime that builds must also describe itself.
                let _ = rt.health_snapshot();
            }
            Err(e) => {
                // Messages are cut: a huge input never makes a huge message.
                assert!(e.to_string().len() < 64 * 1024, "message of {} bytes", e.to_string().len());
            }
        }
    }
});
