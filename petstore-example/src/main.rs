//! `cargo run -p petstore-example` runs the demo on embedded defaults;
//! `-- serve` runs the HTTP service; `-- gateway` runs the payment gateway alone.

use petstore_example::config_source::ConfigSource;
use petstore_example::{admin, demo, gateway, http, App, Settings};
use std::future::IntoFuture;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage:
  petstore-example [demo] [--json] [--health-out PATH] [--seed N]
  petstore-example serve [--addr HOST] [--port N] [--config PATH] [--database-url URL]
                         [--redis-url URL] [--nats-url URL] [--gateway ADDR]
                         [--shutdown-grace SECONDS] [--chaos] [--watch-config]
  petstore-example gateway [--port N] [--seed N] [--failure-rate F]
env: DATABASE_URL, REDIS_URL, NATS_URL, GATEWAY_ADDR, PETSTORE_ADDR, PETSTORE_PORT, RESILIENCE_CONFIG,
     PETSTORE_SHUTDOWN_GRACE, PETSTORE_ADMIN_TOKEN (turns on the admin routes)";

struct Args(Vec<String>);

impl Args {
    /// The value after `--name`, else the env var, else none.
    fn value(&mut self, name: &str, env: Option<&str>) -> Result<Option<String>, String> {
        if let Some(i) = self.0.iter().position(|a| a == name) {
            if i + 1 >= self.0.len() {
                return Err(format!("{name} needs a value"));
            }
            let v = self.0.remove(i + 1);
            self.0.remove(i);
            return Ok(Some(v));
        }
        Ok(env
            .and_then(|e| std::env::var(e).ok())
            .filter(|v| !v.is_empty()))
    }

    fn flag(&mut self, name: &str) -> bool {
        let found = self.0.iter().position(|a| a == name);
        found.map(|i| self.0.remove(i)).is_some()
    }

    fn number<T: std::str::FromStr>(
        &mut self,
        name: &str,
        env: Option<&str>,
        default: T,
    ) -> Result<T, String> {
        match self.value(name, env)? {
            Some(v) => v
                .parse()
                .map_err(|_| format!("{name} takes a number, got {v:?}")),
            None => Ok(default),
        }
    }

    fn done(self) -> Result<(), String> {
        match self.0.first() {
            Some(extra) => Err(format!("unexpected argument {extra:?}")),
            None => Ok(()),
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let command = match args.first().map(String::as_str) {
        Some("serve" | "gateway" | "demo") => args.remove(0),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => "demo".to_owned(),
    };
    let result = match command.as_str() {
        "serve" => serve(Args(args)).await,
        "gateway" => run_gateway(Args(args)).await,
        _ => run_demo(Args(args)).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}

async fn run_demo(mut args: Args) -> Result<(), String> {
    let json = args.flag("--json");
    let health_out = args
        .value("--health-out", None)?
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir()
                .join("petstore-example")
                .join("health.json")
        });
    let seed = args.number("--seed", None, 42u64)?;
    args.done()?;
    // With --json, stdout is the one JSON document; the scenario headings
    // still go to stderr as progress, since the run takes several seconds.
    let report = demo::run(seed, health_out, |line| {
        if !json {
            println!("{line}");
        } else if line.trim_start().starts_with(|c: char| c.is_ascii_digit()) {
            eprintln!("{}", line.trim());
        }
    })
    .await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
    }
    Ok(())
}

async fn serve(mut args: Args) -> Result<(), String> {
    let host = args
        .value("--addr", Some("PETSTORE_ADDR"))?
        .unwrap_or_else(|| "127.0.0.1".into());
    let port: u16 = args.number("--port", Some("PETSTORE_PORT"), 8080)?;
    let config = args.value("--config", Some("RESILIENCE_CONFIG"))?;
    let chaos = args.flag("--chaos");
    let watch_config = args.flag("--watch-config");
    let grace: f64 = args.number("--shutdown-grace", Some("PETSTORE_SHUTDOWN_GRACE"), 10.0)?;
    if !(0.0..=3600.0).contains(&grace) {
        return Err(format!(
            "--shutdown-grace takes seconds from 0 to 3600, got {grace}"
        ));
    }
    let grace = std::time::Duration::from_secs_f64(grace);
    let settings = Settings {
        database_url: args.value("--database-url", Some("DATABASE_URL"))?,
        redis_url: args.value("--redis-url", Some("REDIS_URL"))?,
        nats_url: args.value("--nats-url", Some("NATS_URL"))?,
        gateway_addr: args.value("--gateway", Some("GATEWAY_ADDR"))?,
        ..Settings::default()
    };
    args.done()?;
    // With your own file, it decides the scope of every limit. On the
    // embedded config, REDIS_URL makes the payment limit shared by every
    // instance.
    // --chaos adds the game-day profile on top, as a last layer.
    // A reload (`--watch-config`, `POST /admin/reload`) reads the same
    // layers again.
    let mut source = match &config {
        Some(path) => ConfigSource::file(path),
        None => ConfigSource::embedded(),
    };
    if let (None, Some(redis)) = (&config, &settings.redis_url) {
        source = source.with_overlay(petstore_example::cluster_overlay(redis));
    }
    if chaos {
        source = source.with_overlay(petstore_example::CHAOS_OVERLAY);
        println!(
            "chaos is on: the game-day profile (petstore_example::CHAOS_OVERLAY) injects faults"
        );
    }
    if watch_config && config.is_none() {
        return Err(
            "--watch-config needs --config PATH (or RESILIENCE_CONFIG): the embedded configuration never changes"
                .into(),
        );
    }
    let runtime = source.init().map_err(|e| e.to_string())?;
    let app = App::start(settings).await?;
    let listener = tokio::net::TcpListener::bind((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot listen on {host}:{port}: {e}"))?;
    println!(
        "petstore listening on http://{} (database: {}, cache: {}, events: {}, gateway: {})",
        listener.local_addr().map_err(|e| e.to_string())?,
        if app.store.db.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        },
        app.store.cache.backend(),
        app.store.events.backend(),
        app.gateway
            .as_ref()
            .map_or("external".to_owned(), |g| g.addr().to_string()),
    );
    // On SIGINT or SIGTERM, requests in flight get `grace` to finish; then
    // they are cancelled, so a hung dependency cannot hold the shutdown.
    let _watching = match watch_config {
        true => Some(petstore_example::watch::watch(
            source.clone(),
            runtime.clone(),
        )?),
        false => None,
    };
    let admin = admin::AdminToken::from_env().map(|token| admin::Admin::new(token, source));
    let (signalled, mut grace_starts) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, http::router_with(app.store, admin))
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            let _ = signalled.send(true);
        })
        .into_future();
    let grace_over = async move {
        let _ = grace_starts.wait_for(|s| *s).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        served = server => {
            served.map_err(|e| e.to_string())?;
            println!("petstore stopped");
        }
        () = grace_over => {
            println!(
                "petstore stopped after its {}s shutdown grace period; requests still running were cancelled",
                grace.as_secs_f64()
            );
        }
    }
    Ok(())
}

async fn run_gateway(mut args: Args) -> Result<(), String> {
    let port: u16 = args.number("--port", None, 8090)?;
    let rules = gateway::GatewayRules {
        seed: args.number("--seed", None, 42u64)?,
        failure_rate: args.number("--failure-rate", None, 0.0f64)?,
        ..gateway::GatewayRules::default()
    };
    args.done()?;
    let gw = gateway::Gateway::start(rules, port)
        .await
        .map_err(|e| e.to_string())?;
    println!("payment gateway listening on http://{}", gw.addr());
    shutdown_signal().await;
    Ok(())
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
