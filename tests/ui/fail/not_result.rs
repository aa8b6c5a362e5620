use resilience_runtime::database_call;

#[database_call(dependency = "db")]
async fn count() -> u32 {
    3
}

fn main() {}
