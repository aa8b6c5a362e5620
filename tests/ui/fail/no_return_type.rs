use resilience_runtime::database_call;

#[database_call(dependency = "db")]
async fn ping() {}

fn main() {}
