//! Validation of routes (names, prefixes, header conditions, pools; no route shadowed by an
//! earlier one) and of the server's connection settings.

use http::header::{HeaderName, HeaderValue};

use super::check::{valid_name, Problems, NAME_RULE};
use super::raw::{Api, RawRoute, RawServer};
use super::snapshot::{Route, RouteTarget, ServerLimits};
use crate::provider::Dialect;

/// Build every route, reporting duplicates and routes an earlier one shadows.
pub(super) fn build_all(raw: &[RawRoute], pools: &[&str], p: &mut Problems) -> Vec<Route> {
    let mut routes = Vec::with_capacity(raw.len());
    for (i, route) in raw.iter().enumerate() {
        let path = format!("routes[{i}]");
        if raw[..i].iter().any(|r| r.name == route.name) {
            p.add(format!("{path}.name"), format!("duplicate route name {:?}", route.name));
        }
        if let Some(r) = build_route(&path, route, pools, p) {
            routes.push(r);
        }
    }
    for (i, later) in routes.iter().enumerate() {
        if let Some(earlier) = routes[..i].iter().find(|e| shadows(e, later)) {
            p.add(
                format!("routes[{i}]"),
                format!(
                    "route {:?} is never reached: route {:?} before it matches every path it does ({}) without a header condition",
                    later.name, earlier.name, earlier.path_prefix
                ),
            );
        }
    }
    routes
}

/// Whether `earlier` takes every request `later` could match: no header condition of its own, and
/// a prefix that covers `later`'s (equal, `/`, or a parent at a segment boundary).
fn shadows(earlier: &Route, later: &Route) -> bool {
    let (e, l) = (&*earlier.path_prefix, &*later.path_prefix);
    earlier.header.is_none() && (e == "/" || e == l || (l.starts_with(e) && l.as_bytes().get(e.len()) == Some(&b'/')))
}

pub(super) fn build_route(path: &str, r: &RawRoute, pools: &[&str], p: &mut Problems) -> Option<Route> {
    let start = p.0.len();
    if !valid_name(&r.name) {
        p.add(format!("{path}.name"), NAME_RULE);
    }
    let prefix = r.matcher.path_prefix.as_deref().unwrap_or("/");
    if !prefix.starts_with('/') || prefix.contains(['?', '#', ' ']) {
        p.add(format!("{path}.match.path_prefix"), "must be a path starting with /");
    }
    let prefix = if prefix.len() > 1 {
        prefix.trim_end_matches('/')
    } else {
        prefix
    };
    let header = r.matcher.header.as_ref().and_then(|h| {
        let name = HeaderName::from_bytes(h.name.as_bytes());
        let value = HeaderValue::from_str(&h.value);
        match (name, value) {
            (Ok(n), Ok(v)) => Some((n, v)),
            (Err(_), _) => {
                p.add(format!("{path}.match.header.name"), "not a valid header name");
                None
            }
            (_, Err(_)) => {
                p.add(format!("{path}.match.header.value"), "not a valid header value");
                None
            }
        }
    });
    let target = match (&r.pool, r.api) {
        (Some(name), None) => match pools.iter().position(|n| n == name) {
            Some(i) => Some(RouteTarget::Pool(i)),
            None => {
                p.add(format!("{path}.pool"), format!("no pool named {name:?}"));
                None
            }
        },
        (None, Some(api)) => Some(RouteTarget::Door(match api {
            Api::Openai => Dialect::OpenAi,
            Api::Anthropic => Dialect::Anthropic,
        })),
        (Some(_), Some(_)) => {
            p.add(path, "set pool (pass-through) or api (front door), not both");
            None
        }
        (None, None) => {
            p.add(path, "set pool (pass-through) or api: openai | anthropic (front door)");
            None
        }
    };
    (p.0.len() == start).then(|| Route {
        name: r.name.as_str().into(),
        path_prefix: prefix.into(),
        header,
        strip_prefix: r.strip_prefix,
        target: target.unwrap_or(RouteTarget::Pool(0)),
        metrics: Default::default(),
    })
}

/// `server.*`: deadlines must be positive, the connection cap at least 1.
pub(super) fn server_limits(raw: &RawServer, p: &mut Problems) -> ServerLimits {
    for (key, d) in [
        ("header_timeout", raw.header_timeout.0),
        ("keepalive_timeout", raw.keepalive_timeout.0),
        ("body_timeout", raw.body_timeout.0),
    ] {
        if d.is_zero() {
            p.add(format!("server.{key}"), "must be greater than 0");
        }
    }
    if raw.max_connections == 0 {
        p.add("server.max_connections", "must be at least 1");
    }
    ServerLimits {
        header_timeout: raw.header_timeout.0,
        keepalive_timeout: raw.keepalive_timeout.0,
        body_timeout: raw.body_timeout.0,
        max_connections: raw.max_connections as usize,
    }
}
