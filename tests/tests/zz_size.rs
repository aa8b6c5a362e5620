use resilience_runtime::database_call;
use resilience_tests::TestError;
#[database_call(dependency = "a")]
async fn plain(x: u64) -> Result<u64, TestError> {
    Ok(x + 1)
}
#[database_call(dependency = "a", idempotent)]
async fn idem(x: u64) -> Result<u64, TestError> {
    Ok(x + 1)
}
#[test]
fn sizes() {
    eprintln!(
        "plain {} idem {}",
        std::mem::size_of_val(&plain(1)),
        std::mem::size_of_val(&idem(1))
    );
}
