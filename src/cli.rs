//! The command line: `run` and `check` (and later `usage`, `status`, `chat`).

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::config::{self, Problem};
use crate::sidecar::Sidecar;

#[derive(Parser)]
#[command(
    name = "llm-sidecar",
    version,
    about = "A sidecar reverse proxy for LLM APIs"
)]
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
        Command::Check { config } => match config::load(&config) {
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
            let snap = match config::load(&config) {
                Ok(s) => s,
                Err(problems) => {
                    print_problems(&config, &problems);
                    return 1;
                }
            };
            let core = Sidecar::new(snap, Some(config.clone()));
            match crate::server::run(Arc::clone(&core)) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("llm-sidecar: {e}");
                    1
                }
            }
        }
    }
}
