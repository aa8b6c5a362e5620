#[resilience_runtime::database_call(dependency = "db")]
struct Pet;

fn main() {}
