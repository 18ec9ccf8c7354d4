//! llm-sidecar: a sidecar reverse proxy for LLM APIs (Anthropic, OpenAI, Gemini, OpenRouter)
//! built on Pingora. The proxy is a library: [`SidecarProxy`] is a `ProxyHttp` service that any
//! Pingora server can host; [`server::build`] assembles the complete sidecar.

pub mod admin;
pub mod alloc;
pub mod claude_cli;
#[cfg(feature = "cli")]
pub mod cli;
pub mod clock;
pub mod config;
pub mod cors;
pub mod dns;
pub mod gate;
pub mod json;
pub mod linebuf;
pub mod logline;
pub mod metrics;
pub mod notify;
pub mod observe;
pub mod outbound;
pub mod peer;
pub mod provider;
pub mod proxy;
pub mod reload;
pub mod resilience;
pub mod secret;
pub mod server;
pub mod shared;
pub mod sidecar;
pub mod state;
pub mod store;
pub mod text;
pub mod translate;
pub mod usage;
pub mod validate;

pub use proxy::SidecarProxy;
pub use sidecar::Sidecar;
