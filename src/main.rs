//! The `erasure-worker` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use erasure_worker::{kafka, topics};

#[derive(Parser)]
#[command(
    version,
    about = "Turns GDPR erasure requests from Kafka into verified LangSmith trace deletions"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Prepare the demo environment: create the topics and check that LangSmith answers.
    /// (The full flow arrives with the intake and verifier roles.)
    Demo {
        /// Kafka bootstrap servers.
        #[arg(long, default_value = "127.0.0.1:9092")]
        bootstrap: String,
        /// LangSmith (or simulator) base URL.
        #[arg(long, default_value = "http://127.0.0.1:1984")]
        langsmith_url: String,
        /// Environment variable holding the LangSmith API key.
        #[arg(long, default_value = "LANGSMITH_API_KEY")]
        api_key_env: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo {
            bootstrap,
            langsmith_url,
            api_key_env,
        } => demo(&bootstrap, &langsmith_url, &api_key_env).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("erasure-worker: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn demo(bootstrap: &str, langsmith_url: &str, api_key_env: &str) -> anyhow::Result<()> {
    let key = std::env::var(api_key_env).map_err(|_| anyhow::anyhow!("{api_key_env} is not set"))?;
    kafka::create_topics(bootstrap, &topics::ALL, 3).await?;
    println!("broker {bootstrap}: topics ready: {}", topics::ALL.join(", "));
    let resp = reqwest::Client::new()
        .get(format!("{langsmith_url}/api/v1/sessions?limit=100"))
        .header("x-api-key", key)
        .send()
        .await?
        .error_for_status()?;
    let sessions: Vec<serde_json::Value> = resp.json().await?;
    println!(
        "langsmith {langsmith_url}: reachable, {} tracing project(s) visible",
        sessions.len()
    );
    println!(
        "next: the intake role will read {}, delete the named traces in batches of at most 1000 per \
         project and publish {}; the verifier will re-check after the deletion window and publish {} or {}.",
        topics::REQUESTS,
        topics::DELETION_REQUESTED,
        topics::DELETION_VERIFIED,
        topics::DELETION_FAILED
    );
    Ok(())
}
