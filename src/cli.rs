//! The command line: `run` and `check` (and later `usage`, `status`, `chat`).

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

/// Run the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
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
        Command::Check { config } => match config::load(&config, &States::default()) {
            Ok(snap) => {
                println!("{}: ok: {}", config.display(), snap.summary());
                0
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
