//! Logging set-up: the tracing subscriber (Pingora's `log` output included) writing through the
//! batched line buffer, and its flush on the way out.

/// Keeps the log writer's thread alive; dropping it flushes what is buffered.
static LOG_WRITER: std::sync::Mutex<Option<crate::linebuf::Flusher>> = std::sync::Mutex::new(None);

/// Log lines waiting to be written at most; past it new ones are dropped (and the loss said).
const LOG_BUFFER: usize = 8 << 20;
/// How long lines gather before a write to stdout.
const LOG_GATHER: std::time::Duration = std::time::Duration::from_millis(50);

/// Install the global subscriber: `LOG_FORMAT=json` for JSON lines, `RUST_LOG` to filter
/// (default `info`). Lines are written by a background thread in batches, so a slow stdout never
/// blocks a proxy thread (past 8 MiB waiting, new lines are dropped rather than wait). Pingora logs
/// through the `log` crate; it is bridged here, and held at `info` unless `RUST_LOG` names a
/// pingora crate: its debug output prints request and body bytes.
pub fn init() {
    use tracing_subscriber::fmt;
    let spec = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let filter = filter(&spec);
    let (writer, flusher) = match crate::linebuf::LineBuffer::start(std::io::stdout(), LOG_BUFFER, LOG_GATHER) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("cannot start the log writer: {e}");
            return;
        }
    };
    if let Ok(mut slot) = LOG_WRITER.lock() {
        *slot = Some(flusher);
    }
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    // Colours only for a person at a terminal, never into a file or a log pipeline.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let direct = writer.clone();
    let result = if json {
        fmt()
            .json()
            .with_writer(writer)
            .with_env_filter(filter)
            .with_current_span(false)
            .try_init()
    } else {
        fmt()
            .with_writer(writer)
            .with_ansi(ansi)
            .with_env_filter(filter)
            .try_init()
    };
    if result.is_ok() && !ansi {
        // Access lines skip the subscriber's formatting and go straight into the same buffer.
        crate::logline::install(direct, json);
    }
    // `try_init` also installs the `log` bridge for Pingora's records.
    if let Err(e) = result {
        eprintln!("logging already initialised: {e}");
    }
}

/// The filter for a `RUST_LOG` spec (`info` when it does not parse): Pingora's pre-hook error
/// lines off and Pingora held at `info`, unless the spec names a pingora crate.
pub fn filter(spec: &str) -> tracing_subscriber::EnvFilter {
    let mut filter = tracing_subscriber::EnvFilter::try_new(spec).unwrap_or_else(|_| "info".into());
    if spec.contains("pingora") {
        return filter;
    }
    // Cap Pingora at info only where the spec would let its debug through (adding the cap to
    // a quieter spec would raise Pingora to info).
    let verbose = filter
        .max_level_hint()
        .is_none_or(|l| l > tracing_subscriber::filter::LevelFilter::INFO);
    // Pingora's own line for a connection that failed before any hook ran duplicates the gate's
    // `request refused before routing` line (and every later error is an access line).
    let caps: &[&str] = if verbose {
        &["pingora_proxy=off", "pingora_core=info", "pingora=info"]
    } else {
        &["pingora_proxy=off"]
    };
    for cap in caps {
        if let Ok(d) = cap.parse() {
            filter = filter.add_directive(d);
        }
    }
    filter
}

/// Write out buffered log lines (before the process exits).
pub fn flush_logs() {
    if let Ok(mut slot) = LOG_WRITER.lock() {
        drop(slot.take());
    }
}
