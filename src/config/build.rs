//! Validation: turns a parsed file into a [`Snapshot`], reporting every problem with its path.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use super::check::{parse_base_url, read_secret, valid_name, Problem, Problems, NAME_RULE};
use super::raw::{RawConfig, RawLog, RawPrice, RawToken};
use super::snapshot::{ClientToken, Limits, LogConf, Snapshot};
use crate::state::States;
use crate::usage::price::Price;

/// Validate `raw` and build the snapshot, reading every key from the environment or its file.
pub fn build(raw: RawConfig, states: &States) -> Result<Snapshot, Vec<Problem>> {
    let mut p = Problems::default();

    let listen = parse_addr(&raw.listen, "listen", &mut p);
    let admin_listen = parse_addr(&raw.admin.listen, "admin.listen", &mut p);
    if raw.server.threads == 0 || raw.server.threads > 256 {
        p.add("server.threads", "must be between 1 and 256");
    }
    if raw.limits.max_body_bytes == 0 {
        p.add("limits.max_body_bytes", "must be greater than 0");
    }
    if !(1..=128).contains(&raw.limits.max_json_depth) {
        p.add("limits.max_json_depth", "must be between 1 and 128");
    }
    if raw.limits.max_sse_event_bytes < 1024 {
        p.add("limits.max_sse_event_bytes", "must be at least 1024");
    }
    if raw.limits.max_buffered_bytes < raw.limits.max_body_bytes {
        p.add(
            "limits.max_buffered_bytes",
            "must be at least limits.max_body_bytes (one request's body must fit)",
        );
    }
    let server = super::routes::server_limits(&raw.server, &mut p);
    let cors = raw
        .cors
        .as_ref()
        .and_then(|c| crate::cors::Cors::build(c).map_err(|(path, m)| p.add(path, m)).ok());

    let pool_names: Vec<&str> = raw.pools.keys().map(String::as_str).collect();
    let pools = super::pools::build_all(&raw.pools, states, &mut p);
    if raw.pools.is_empty() {
        p.add("pools", "at least one pool is required");
    }

    if raw.routes.is_empty() {
        p.add("routes", "at least one route is required");
    }
    let routes = super::routes::build_all(&raw.routes, &pool_names, &mut p);

    let mut client_tokens = Vec::new();
    if let Some(tokens) = &raw.clients.tokens {
        if tokens.is_empty() {
            p.add("clients.tokens", "is empty: list at least one token, or remove the key");
        }
        for (i, t) in tokens.iter().enumerate() {
            let path = format!("clients.tokens[{i}]");
            if tokens[..i].iter().any(|o| o.name == t.name) {
                p.add(format!("{path}.name"), format!("duplicate client name {:?}", t.name));
            }
            if let Some(token) = build_token(&path, t, &mut p) {
                client_tokens.push(token);
            }
        }
    }
    if let Some(addr) = listen {
        if !addr.ip().is_loopback() && raw.clients.tokens.is_none() {
            p.add(
                "listen",
                format!(
                    "{addr} is not a loopback address: set clients.tokens so that only your apps can use the real keys"
                ),
            );
        }
    }

    let prices: Vec<Price> = raw
        .prices
        .iter()
        .enumerate()
        .filter_map(|(i, price)| build_price(&format!("prices[{i}]"), price, &mut p))
        .collect();
    let models = super::models::build_all(&raw.models, &pool_names, &prices, &mut p);
    let log = build_log(&raw.log, &mut p);
    let webhook = raw
        .notifications
        .webhook
        .as_ref()
        .and_then(|w| build_webhook(w, &mut p));
    let admin_token = raw
        .admin
        .token_env
        .as_deref()
        .and_then(|var| read_secret("admin", "token", Some(var), None, &mut p));
    if let (Some(app), Some(admin)) = (listen, admin_listen) {
        let overlap = app.ip() == admin.ip() || app.ip().is_unspecified() || admin.ip().is_unspecified();
        if app.port() == admin.port() && overlap {
            // Whichever binds first would take the other's connections (or the second would fail).
            p.add(
                "admin.listen",
                format!("{admin} overlaps listen ({app}): use another port"),
            );
        }
    }
    if let Some(addr) = admin_listen {
        if !addr.ip().is_loopback() && raw.admin.token_env.is_none() {
            p.add(
                "admin.listen",
                format!("{addr} is not a loopback address: set admin.token_env so that /admin/* needs a token"),
            );
        }
    }
    let key_files: Vec<std::path::PathBuf> = raw
        .pools
        .values()
        .flat_map(|pool| pool.accounts.iter().filter_map(|a| a.key_file.as_deref()))
        .chain(
            raw.clients
                .tokens
                .iter()
                .flatten()
                .filter_map(|t| t.token_file.as_deref()),
        )
        .map(std::path::PathBuf::from)
        .collect();
    for (i, t) in raw.notifications.thresholds.iter().enumerate() {
        if !(*t > 0.0 && *t <= 1.0) {
            p.add(
                format!("notifications.thresholds[{i}]"),
                "must be a share of the weekly budget, above 0 and at most 1",
            );
        }
    }
    if raw.clients.limit.as_ref().is_some_and(|l| l.rpm == 0) {
        p.add(
            "clients.limit.rpm",
            "must be at least 1 (omit clients.limit for no limit)",
        );
    }

    let shared = super::shared::build(&raw.shared, &mut p);

    match (listen, admin_listen, p.0.is_empty()) {
        (Some(listen), Some(admin_listen), true) => Ok(Snapshot {
            listen,
            admin_listen,
            threads: raw.server.threads,
            shutdown_grace: raw.server.shutdown_grace.0,
            server,
            limits: Limits {
                max_body_bytes: usize::try_from(raw.limits.max_body_bytes).unwrap_or(usize::MAX),
                max_json_depth: raw.limits.max_json_depth as usize,
                max_sse_event_bytes: usize::try_from(raw.limits.max_sse_event_bytes).unwrap_or(usize::MAX),
                max_buffered_bytes: usize::try_from(raw.limits.max_buffered_bytes).unwrap_or(usize::MAX),
            },
            cors,
            routes,
            pools,
            models,
            client_tokens,
            prices,
            log,
            client_rpm: raw.clients.limit.as_ref().map(|l| l.rpm),
            webhook,
            thresholds: raw.notifications.thresholds.clone(),
            admin_token,
            fingerprint: 0,
            key_files,
            shared,
        }),
        _ => Err(p.0),
    }
}

fn parse_addr(text: &str, path: &str, p: &mut Problems) -> Option<SocketAddr> {
    match text.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            p.add(path, format!("{text:?} is not an address like 127.0.0.1:8080"));
            None
        }
    }
}

fn build_price(path: &str, raw: &RawPrice, p: &mut Problems) -> Option<Price> {
    let start = p.0.len();
    if raw.model.is_empty() {
        p.add(format!("{path}.model"), "must not be empty");
    }
    let fields = [
        ("input", Some(raw.input)),
        ("output", Some(raw.output)),
        ("cache_read", raw.cache_read),
        ("cache_write", raw.cache_write),
        ("cache_write_1h", raw.cache_write_1h),
    ];
    for (key, value) in fields {
        if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
            p.add(
                format!("{path}.{key}"),
                "must be a non-negative number (USD per million tokens)",
            );
        }
    }
    (p.0.len() == start).then(|| Price {
        model: raw.model.as_str().into(),
        input: raw.input,
        output: raw.output,
        cache_read: raw.cache_read,
        cache_write: raw.cache_write,
        cache_write_1h: raw.cache_write_1h,
    })
}

fn build_log(raw: &RawLog, p: &mut Problems) -> LogConf {
    let sqlite = raw.sqlite.as_deref().map(std::path::PathBuf::from);
    if let Some(path) = &sqlite {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            p.add("log.sqlite", format!("directory {} does not exist", dir.display()));
        }
    }
    if raw.retention.0.is_zero() {
        p.add("log.retention", "must be greater than 0");
    }
    if raw.queue == 0 {
        p.add("log.queue", "must be at least 1");
    }
    LogConf {
        sqlite,
        retention: raw.retention.0,
        queue: raw.queue,
    }
}

fn build_webhook(raw: &super::raw::RawWebhook, p: &mut Problems) -> Option<super::snapshot::Webhook> {
    let path = "notifications.webhook.url_env";
    let url = match std::env::var(&raw.url_env) {
        Ok(u) if !u.trim().is_empty() => u,
        _ => {
            p.add(path, format!("{} is not set", raw.url_env));
            return None;
        }
    };
    let uri: http::Uri = url
        .trim()
        .parse()
        .map_err(|_| p.add(path, format!("{} is not a URL", raw.url_env)))
        .ok()?;
    let base = format!(
        "{}://{}",
        uri.scheme_str().unwrap_or(""),
        uri.authority().map_or("", |a| a.as_str())
    );
    let target = parse_base_url(&base)
        .map_err(|_| p.add(path, format!("{} must be an http(s) URL", raw.url_env)))
        .ok()?;
    if raw.timeout.0.is_zero() {
        p.add("notifications.webhook.timeout", "must be greater than 0");
    }
    let path_and_query = uri
        .path_and_query()
        .map_or("/".to_string(), |pq| pq.as_str().to_string());
    Some(super::snapshot::Webhook {
        target,
        path: path_and_query,
        timeout: raw.timeout.0,
        backoff: raw.backoff.0,
    })
}

fn build_token(path: &str, t: &RawToken, p: &mut Problems) -> Option<ClientToken> {
    if !valid_name(&t.name) {
        p.add(format!("{path}.name"), NAME_RULE);
        return None;
    }
    let token = read_secret(path, "token", t.token_env.as_deref(), t.token_file.as_deref(), p)?;
    Some(ClientToken {
        name: Arc::from(t.name.as_str()),
        token,
    })
}
