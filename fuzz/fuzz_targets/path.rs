#![no_main]
//! path: request path normalisation never panics, and a path it accepts starts with `/`, has no
//! `//`, no `.`/`..`/all-dots segment, no `%2e` left and no encoded `/`, `\` or NUL, and is its own
//! normal form. A path that never climbed (`..`) escapes no prefix; one that did never climbs above
//! a route it entered by without `escapes` saying so: every prefix of the entry path that it does
//! not escape still holds the final path. Through `resolve`, an accepted request lies under its
//! route's prefix, and under the prefix of the route it entered by.
//!
//! Input: the raw path (not UTF-8: skipped, as the request line is ASCII); its length's parity
//! orders the routes built from it (longest prefix first, or shortest first).

use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use llm_sidecar::config::{Route, RouteTarget};
use llm_sidecar::proxy::route::{find, normalize, resolve};

/// `path` is `prefix` or lies under it, at a segment boundary (how routes match).
fn under(path: &str, prefix: &str) -> bool {
    prefix == "/" || (path.starts_with(prefix) && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/')))
}

/// `/` and each leading run of `path`'s segments: `/`, `/a`, `/a/b`, ... (the first 32, so that
/// long paths stay cheap).
fn prefixes(path: &str) -> Vec<String> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).take(32).collect();
    let mut out = vec!["/".to_string()];
    for k in 1..=segments.len() {
        out.push(format!("/{}", segments[..k].join("/")));
    }
    out
}

fn route(prefix: &str) -> Route {
    Route {
        name: "r".into(),
        path_prefix: prefix.into(),
        header: None,
        strip_prefix: true,
        target: RouteTarget::Pool(0),
        metrics: Default::default(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let normal = match normalize(raw) {
        Ok(n) => n,
        Err(why) => {
            assert!(!why.is_empty());
            return;
        }
    };
    assert!(raw.starts_with('/'), "accepted without a leading /: {raw:?}");
    assert!(!raw.contains('\\'), "accepted with a backslash: {raw:?}");

    let path = normal.path.as_str();
    assert!(path.starts_with('/'), "{raw:?} -> {path:?}");
    assert!(!path.contains("//"), "{raw:?} -> {path:?}");
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        assert!(!segment.bytes().all(|b| b == b'.'), "dot segment: {raw:?} -> {path:?}");
    }
    let lower = path.to_ascii_lowercase();
    for bad in ["%2e", "%2f", "%5c", "%00", "\\"] {
        assert!(!lower.contains(bad), "{bad} left: {raw:?} -> {path:?}");
    }
    let again = normalize(path).unwrap_or_else(|why| panic!("{raw:?} -> {path:?}, refused after: {why}"));
    assert_eq!(again.path, path, "normalising twice changes {raw:?}");
    assert_eq!((again.low_water, again.entry), (None, None), "{path:?} still climbs");

    // Climbing.
    assert_eq!(
        normal.low_water.is_some(),
        normal.entry.is_some(),
        "{raw:?}: {normal:?}"
    );
    assert!(!normal.escapes("/"), "the root is never climbed out of");
    match &normal.entry {
        None => {
            for prefix in prefixes(path) {
                assert!(!normal.escapes(&prefix), "{raw:?} never climbed, yet escapes {prefix}");
            }
        }
        Some(entry) => {
            assert!(entry.starts_with('/'), "entry {entry:?}");
            for prefix in prefixes(entry) {
                if !normal.escapes(&prefix) {
                    assert!(
                        under(path, &prefix),
                        "{raw:?} entered under {prefix}, climbed out to {path:?}, and escapes() says no"
                    );
                }
            }
        }
    }

    // Through resolve, with routes on the entry's and the path's prefixes.
    let mut bases: Vec<String> = normal.entry.as_deref().map(prefixes).unwrap_or_default();
    for p in prefixes(path) {
        if !bases.contains(&p) {
            bases.push(p);
        }
    }
    bases.sort_by_key(|p| p.len());
    if data.len() % 2 == 0 {
        bases.reverse();
    }
    let routes: Vec<Route> = bases.iter().map(|p| route(p)).collect();
    let headers = HeaderMap::new();
    let Ok(routed) = resolve(&routes, raw, &headers) else {
        return;
    };
    assert_eq!(routed.path, path, "resolve and normalize disagree on {raw:?}");
    let landed = &routes[routed.index].path_prefix;
    assert!(under(path, landed), "{path:?} routed to {landed}");
    assert_eq!(
        find(&routes, path, &headers),
        Some(routed.index),
        "the first matching route"
    );
    assert!(
        !normal.escapes(landed),
        "{raw:?} climbed out of {landed}, yet routed there"
    );
    if let Some(entered) = normal.entry.as_deref().and_then(|e| find(&routes, e, &headers)) {
        let prefix = &routes[entered].path_prefix;
        assert!(
            under(path, prefix),
            "{raw:?} entered by {prefix} and left it for {path:?}"
        );
    }
});
