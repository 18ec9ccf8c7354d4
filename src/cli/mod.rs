//! The command line: `run`, `check`, `usage`, `status` and `chat`.

mod chat;
mod status;

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::config::{self, Problem};
use crate::sidecar::Sidecar;
use crate::state::States;
use crate::store::report::{self, By};

#[derive(Parser)]
#[command(name = "llm-sidecar", version, about = "A sidecar reverse proxy for LLM APIs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the sidecar.
    Run {
        /// Config file.
        #[arg(long, short, env = "LLM_SIDECAR_CONFIG", default_value = config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Validate a config file: every problem with its path, or a one-line summary.
    Check {
        /// Config file.
        #[arg(long, short, env = "LLM_SIDECAR_CONFIG", default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        /// Also connect to what the config names outside this process (`shared.redis`).
        #[arg(long)]
        connect: bool,
    },
    /// Pools and accounts of a running sidecar, from its admin API.
    Status {
        /// The admin listener.
        #[arg(long, default_value = "http://127.0.0.1:9901")]
        admin: String,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// An interactive chat through the sidecar, streaming replies.
    Chat {
        /// The sidecar route for the provider (default http://127.0.0.1:8080/<provider>).
        #[arg(long)]
        base: Option<String>,
        #[arg(long, value_enum, default_value_t = ChatProvider::Anthropic)]
        provider: ChatProvider,
        /// Model name (default: a current model of the provider).
        #[arg(long)]
        model: Option<String>,
    },
    /// Requests, tokens, cost, errors and latency per group, from the request log.
    Usage {
        /// The request log (log.sqlite in the config).
        #[arg(long)]
        db: PathBuf,
        /// How far back, e.g. 1h, 24h, 7d.
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        since: std::time::Duration,
        /// Group by.
        #[arg(long, value_enum, default_value_t = By::Account)]
        by: By,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn print_problems(path: &std::path::Path, problems: &[Problem]) {
    eprintln!(
        "{}: {} problem{}",
        path.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        eprintln!("  {p}");
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ChatProvider {
    Anthropic,
    Openai,
    Gemini,
}

/// Run the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Status { admin, json } => {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("llm-sidecar status: {e}");
                    return 1;
                }
            };
            match rt.block_on(status::admin_get(&admin, "/admin/pools")) {
                Ok(v) if json => {
                    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                    0
                }
                Ok(v) => {
                    print!("{}", status::table(&v));
                    0
                }
                Err(e) => {
                    eprintln!("llm-sidecar status: {e}");
                    1
                }
            }
        }
        Command::Chat { base, provider, model } => {
            let provider = match provider {
                ChatProvider::Anthropic => crate::provider::ProviderKind::Anthropic,
                ChatProvider::Openai => crate::provider::ProviderKind::Openai,
                ChatProvider::Gemini => crate::provider::ProviderKind::Gemini,
            };
            chat::run(chat::Options { base, provider, model })
        }
        Command::Usage { db, since, by, json } => match report::query(&db, since, by) {
            Ok(groups) if json => {
                println!("{}", serde_json::to_string_pretty(&groups).unwrap_or_default());
                0
            }
            Ok(groups) => {
                print!("{}", report::table(&groups, by));
                0
            }
            Err(e) => {
                eprintln!("llm-sidecar usage: {e}");
                1
            }
        },
        Command::Check { config, connect } => match config::load(&config, &States::default()) {
            Ok(snap) => {
                println!("{}: ok: {}", config.display(), snap.summary());
                if connect {
                    connect_shared(&snap)
                } else {
                    0
                }
            }
            Err(problems) => {
                print_problems(&config, &problems);
                1
            }
        },
        Command::Run { config } => {
            crate::observe::init();
            let states = States::default();
            let snap = match config::load(&config, &states) {
                Ok(s) => s,
                Err(problems) => {
                    print_problems(&config, &problems);
                    return 1;
                }
            };
            let core = match Sidecar::new(states, snap, Some(config.clone())) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("llm-sidecar: {e}");
                    return 1;
                }
            };
            let code = match crate::server::run(Arc::clone(&core)) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("llm-sidecar: {e}");
                    1
                }
            };
            crate::observe::flush_logs();
            code
        }
    }
}

/// `check --connect`: reach `shared.redis` once (connect, PING) and say how it went.
fn connect_shared(snap: &crate::config::Snapshot) -> i32 {
    let Some(conf) = &snap.shared else {
        println!("shared.redis: not configured");
        return 0;
    };
    let tried = crate::metrics::Metrics::new()
        .map_err(|e| e.to_string())
        .and_then(|m| crate::shared::Shared::new(conf, &m))
        .and_then(|shared| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(shared.ping())
        });
    match tried {
        Ok(()) => {
            println!("shared.redis: connected (PING answered)");
            0
        }
        Err(e) => {
            eprintln!("shared.redis: cannot connect: {e}");
            1
        }
    }
}
