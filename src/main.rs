//! The `llm-sidecar` binary: parses the command line and hands over to the library.

fn main() {
    std::process::exit(llm_sidecar::cli::main());
}
