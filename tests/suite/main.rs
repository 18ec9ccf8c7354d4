//! The integration suite: the real sidecar started in-process (and, in `process`, as a binary)
//! against fake providers, one module per area, one shared harness.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

mod allocation;
mod bodies;
mod chat;
mod checks;
mod cli;
mod cli_doors;
mod cli_faults;
mod doors;
mod doors_routing;
mod doors_stream;
mod exhaustion;
mod fault_matrix;
mod faults;
mod hardening;
mod limits;
mod notifications;
mod operations;
mod passthrough;
mod process;
mod reload;
mod request_log;
mod resilience;
mod shared;
mod timeouts;
mod tls;
mod usage;
