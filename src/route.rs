//! Route matching (first match wins) and the upstream path: prefix stripped, `key=` dropped.

use http::HeaderMap;

use crate::config::Route;

/// The index of the first route matching `path` and, when it has one, its header condition.
pub fn find(routes: &[Route], path: &str, headers: &HeaderMap) -> Option<usize> {
    routes.iter().position(|r| {
        prefix_matches(path, &r.path_prefix)
            && r.header
                .as_ref()
                .is_none_or(|(name, value)| headers.get(name) == Some(value))
    })
}

/// `/anthropic` matches `/anthropic` and `/anthropic/...`, never `/anthropicx`.
fn prefix_matches(path: &str, prefix: &str) -> bool {
    prefix == "/" || (path.starts_with(prefix) && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/')))
}

/// The path and query to send upstream (before the account's base path is prepended): the
/// route's prefix removed when `strip_prefix` is set, and any `key` query parameter removed,
/// since a credential in a URL ends up in logs.
pub fn upstream_path(route: &Route, path: &str, query: Option<&str>) -> String {
    let rest = if route.strip_prefix && route.path_prefix.len() > 1 {
        &path[route.path_prefix.len().min(path.len())..]
    } else {
        path
    };
    let mut out = String::with_capacity(rest.len() + query.map_or(0, |q| q.len() + 1) + 1);
    if !rest.starts_with('/') {
        out.push('/');
    }
    out.push_str(rest);
    if let Some(q) = query {
        let mut first = true;
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let name = pair.split('=').next().unwrap_or(pair);
            if name == "key" {
                continue;
            }
            out.push(if first { '?' } else { '&' });
            out.push_str(pair);
            first = false;
        }
    }
    out
}

/// The `key` query parameter's value, if any (a client token may arrive there).
pub fn query_key(query: Option<&str>) -> Option<&str> {
    query?.split('&').find_map(|pair| pair.strip_prefix("key="))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{HeaderName, HeaderValue};

    fn route(prefix: &str, strip: bool, header: Option<(&'static str, &'static str)>) -> Route {
        Route {
            name: "r".into(),
            path_prefix: prefix.into(),
            header: header.map(|(n, v)| (HeaderName::from_static(n), HeaderValue::from_static(v))),
            strip_prefix: strip,
            pool: 0,
            metrics: Default::default(),
        }
    }

    #[test]
    fn first_match_wins_at_segment_boundaries() {
        let routes = [
            route("/anthropic", true, Some(("x-llm-route", "backup"))),
            route("/anthropic", true, None),
            route("/", false, None),
        ];
        let mut h = HeaderMap::new();
        assert_eq!(
            find(&routes, "/anthropic/v1/messages", &h),
            Some(1),
            "header route skipped"
        );
        assert_eq!(find(&routes, "/anthropic", &h), Some(1), "exact prefix matches");
        assert_eq!(find(&routes, "/anthropicx/v1", &h), Some(2), "not a segment boundary");
        h.insert("x-llm-route", HeaderValue::from_static("backup"));
        assert_eq!(
            find(&routes, "/anthropic/v1/messages", &h),
            Some(0),
            "header route wins"
        );
        assert_eq!(find(&routes[..2], "/openai/v1", &h), None, "no catch-all, no match");
    }

    #[test]
    fn upstream_path_strips_prefix_and_key() {
        let r = route("/gemini", true, None);
        assert_eq!(
            upstream_path(
                &r,
                "/gemini/v1beta/models/m:streamGenerateContent",
                Some("alt=sse&key=SECRET")
            ),
            "/v1beta/models/m:streamGenerateContent?alt=sse"
        );
        assert_eq!(upstream_path(&r, "/gemini", None), "/", "bare prefix becomes /");
        assert_eq!(
            upstream_path(&r, "/gemini/x", Some("key=a")),
            "/x",
            "only key: no query"
        );
        assert_eq!(
            upstream_path(&r, "/gemini/x", Some("keys=a&b=1")),
            "/x?keys=a&b=1",
            "keys is not key"
        );
        let keep = route("/v1", false, None);
        assert_eq!(upstream_path(&keep, "/v1/models", None), "/v1/models", "no strip");
    }

    #[test]
    fn finds_query_key() {
        assert_eq!(query_key(Some("alt=sse&key=abc")), Some("abc"));
        assert_eq!(query_key(Some("keys=abc")), None);
        assert_eq!(query_key(None), None);
    }
}
