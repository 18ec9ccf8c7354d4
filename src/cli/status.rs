//! `llm-sidecar status`: every pool and account (state, score, sessions, budget used, in-flight,
//! queue, running CLI processes) as a table or JSON, from the admin API.

use std::time::Duration;

use bytes::Bytes;
use pingora::http::RequestHeader;
use serde_json::Value;

use crate::config::parse_base_url;
use crate::outbound::Outbound;

/// GET `path` from the admin listener at `base`, with `LLM_SIDECAR_ADMIN_TOKEN` when set.
pub async fn admin_get(base: &str, path: &str) -> Result<Value, String> {
    let target = parse_base_url(base)?;
    let addr = target.addr().await?;
    let timeouts = crate::config::Timeouts {
        connect: Duration::from_secs(3),
        first_byte: Duration::from_secs(10),
        first_token: None,
        idle: Duration::from_secs(10),
        total: Duration::from_secs(10),
    };
    let peer = crate::peer::build(addr, &target, &timeouts);
    let full = format!("{}{path}", target.base_path);
    let mut req = RequestHeader::build("GET", full.as_bytes(), None).map_err(|e| e.to_string())?;
    req.insert_header(http::header::HOST, target.host_header.clone())
        .map_err(|e| e.to_string())?;
    if let Ok(token) = std::env::var("LLM_SIDECAR_ADMIN_TOKEN") {
        req.insert_header(http::header::AUTHORIZATION, format!("Bearer {}", token.trim()))
            .map_err(|e| e.to_string())?;
    }
    let reply = Outbound::default()
        .send(&peer, req, None::<Bytes>, Duration::from_secs(10))
        .await?;
    let body: Value = serde_json::from_slice(&reply.body).map_err(|e| format!("not JSON ({e})"))?;
    match reply.status {
        200 => Ok(body),
        401 => Err("the admin API wants a token: set LLM_SIDECAR_ADMIN_TOKEN".into()),
        s => Err(format!("the admin API answered {s}: {body}")),
    }
}

/// The table `status` prints.
pub fn table(pools: &Value) -> String {
    let mut rows = vec![[
        "POOL",
        "ACCOUNT",
        "STATE",
        "SCORE",
        "SESSIONS",
        "BUDGET",
        "IN-FLIGHT",
        "QUEUE",
        "CLI",
        "UNTIL",
    ]
    .map(String::from)];
    for p in pools["pools"].as_array().into_iter().flatten() {
        for a in p["accounts"].as_array().into_iter().flatten() {
            let num = |k: &str| a[k].as_f64().map_or("-".to_string(), |v| format!("{v}"));
            rows.push([
                p["name"].as_str().unwrap_or("-").to_string(),
                a["name"].as_str().unwrap_or("-").to_string(),
                a["state"].as_str().unwrap_or("-").to_string(),
                a["score"].as_f64().map_or("-".into(), |v| format!("{v:.1}")),
                num("sessions"),
                a["budget_used"]
                    .as_f64()
                    .map_or("-".into(), |v| format!("{:.1}%", v * 100.0)),
                num("inflight"),
                num("queue"),
                // claude-cli accounts: CLI processes running.
                a["processes"]["running"].as_u64().map_or("-".into(), |n| n.to_string()),
                a["until"].as_str().unwrap_or("-").to_string(),
            ]);
        }
    }
    let widths: Vec<usize> = (0..10)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
