//! Validation of `models`: what the front doors serve. Names are unique and never contain `/`
//! (that form is `POOL/MODEL`); every target names a pool and a model; a `cheapest` model's
//! targets all have a price, or "cheapest" would mean nothing.

use std::sync::Arc;

use super::check::Problems;
use super::raw::{RawModel, Strategy};
use super::snapshot::{Model, Target};
use crate::usage::price::{glob, Price};

/// Build every model, reporting each problem with its path.
pub(super) fn build_all(raw: &[RawModel], pools: &[&str], prices: &[Price], p: &mut Problems) -> Vec<Model> {
    let mut models = Vec::with_capacity(raw.len());
    for (i, m) in raw.iter().enumerate() {
        let path = format!("models[{i}]");
        if raw[..i].iter().any(|o| o.name == m.name) {
            p.add(format!("{path}.name"), format!("duplicate model name {:?}", m.name));
        }
        if let Some(model) = build(&path, m, pools, prices, p) {
            models.push(model);
        }
    }
    models
}

fn build(path: &str, m: &RawModel, pools: &[&str], prices: &[Price], p: &mut Problems) -> Option<Model> {
    let start = p.0.len();
    let valid = !m.name.is_empty()
        && m.name.len() <= 128
        && !m.name.contains('/')
        && !m.name.chars().any(|c| c.is_whitespace() || c.is_control());
    if !valid {
        p.add(
            format!("{path}.name"),
            "use 1-128 characters, no spaces and no / (POOL/MODEL is how a client names a pool's model)",
        );
    }
    if m.targets.is_empty() {
        p.add(format!("{path}.targets"), "list at least one target { pool, model }");
    }
    let mut targets = Vec::with_capacity(m.targets.len());
    for (j, t) in m.targets.iter().enumerate() {
        let tpath = format!("{path}.targets[{j}]");
        let pool = pools.iter().position(|n| *n == t.pool);
        if pool.is_none() {
            p.add(format!("{tpath}.pool"), format!("no pool named {:?}", t.pool));
        }
        if t.model.trim().is_empty() {
            p.add(format!("{tpath}.model"), "must not be empty");
        }
        if m.strategy == Strategy::Cheapest && !prices.iter().any(|pr| glob(&pr.model, &t.model)) {
            p.add(
                format!("{tpath}.model"),
                format!(
                    "{:?} has no price in prices: strategy cheapest needs one for every target",
                    t.model
                ),
            );
        }
        if let Some(pool) = pool {
            targets.push(Target {
                pool,
                model: Arc::from(t.model.as_str()),
            });
        }
    }
    (p.0.len() == start).then(|| Model {
        name: Arc::from(m.name.as_str()),
        strategy: m.strategy,
        degrade: m.degrade,
        targets,
    })
}
