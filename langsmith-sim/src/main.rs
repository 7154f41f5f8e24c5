//! `langsmith-sim`: serve the simulator on a loopback port.

use std::net::SocketAddr;

use clap::Parser;
use langsmith_sim::store::NewWorkspace;
use langsmith_sim::window::Schedule;
use langsmith_sim::Sim;
use uuid::Uuid;

/// A faithful stand-in for the LangSmith endpoints erasure-worker uses (admin API under /_sim/).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to listen on. Keep it on loopback: the admin API takes no key.
    #[arg(long, default_value = "127.0.0.1:1984")]
    listen: SocketAddr,
    /// Seed for ids and injected faults.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Create a workspace reachable with the key in this environment variable.
    #[arg(long, value_name = "ENV_VAR")]
    api_key_env: Option<String>,
    /// Id of that workspace (default: random from the seed).
    #[arg(long)]
    workspace_id: Option<Uuid>,
    /// Deletion window: `manual`, `every:SECONDS`, or `weekly:DAY@HH:MM` (UTC).
    #[arg(long, default_value = "weekly:sunday@00:00")]
    window: String,
    /// Start without the documented rate limits (faults can still be set through /_sim/faults).
    #[arg(long)]
    no_rate_limits: bool,
}

fn schedule(spec: &str) -> anyhow::Result<Schedule> {
    let s = match spec.split_once(':') {
        None if spec == "manual" => Schedule::Manual,
        Some(("every", secs)) => Schedule::Every { seconds: secs.parse()? },
        Some(("weekly", rest)) => {
            let (day, time) = rest
                .split_once('@')
                .ok_or_else(|| anyhow::anyhow!("weekly:DAY@HH:MM"))?;
            Schedule::Weekly {
                day: day.into(),
                time: time.into(),
            }
        }
        _ => anyhow::bail!("--window: manual, every:SECONDS or weekly:DAY@HH:MM"),
    };
    s.validate().map_err(anyhow::Error::msg)?;
    Ok(s)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let sim = Sim::new(args.seed);
    sim.set_schedule(schedule(&args.window)?);
    if args.no_rate_limits {
        sim.clear_faults();
    }
    if let Some(var) = &args.api_key_env {
        let key = std::env::var(var).map_err(|_| anyhow::anyhow!("--api-key-env: {var} is not set"))?;
        let new = NewWorkspace {
            id: args.workspace_id,
            name: "default".into(),
            org_id: None,
            api_keys: vec![key],
            org_scoped_keys: vec![],
        };
        let id = sim.state().create_workspace(new).map_err(anyhow::Error::msg)?;
        println!("workspace {id}");
    }
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    sim.serve(listener, shutdown).await?;
    Ok(())
}
