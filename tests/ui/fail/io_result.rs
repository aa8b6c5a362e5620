//! `std::io::Error` cannot take a `From<ResilienceError>`: one error, at the
//! return type, with the project's note; not a list of `From` impls.

#[resilience_runtime::file_system_call(dependency = "fs")]
async fn size(path: String) -> std::io::Result<u64> {
    Ok(std::fs::metadata(path)?.len())
}

#[resilience_runtime::file_system_call(dependency = "fs", idempotent)]
fn size_blocking(path: String) -> std::io::Result<u64> {
    Ok(std::fs::metadata(path)?.len())
}

fn main() {}
