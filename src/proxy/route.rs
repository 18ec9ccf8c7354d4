//! Paths and routes: the request path normalised before anything reads it (dot segments,
//! percent-encoded dots, repeated slashes; encoded separators refused), route matching (first
//! match wins), and the upstream path: prefix stripped, `key=` dropped.

use http::HeaderMap;

use super::error::ErrorKind;
use crate::config::Route;

/// The route a request takes: its index and the normalised path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// Index into [`crate::config::Snapshot::routes`].
    pub index: usize,
    /// The normalised path (before the prefix is stripped).
    pub path: String,
}

/// Normalise `raw_path` and find its route; a path that cannot be normalised, that climbs out of
/// the route it entered by (`/anthropic/../openai/...`) or out of the one it lands in, or that
/// matches no route, is refused with the kind and message to answer.
pub fn resolve(routes: &[Route], raw_path: &str, headers: &HeaderMap) -> Result<Routed, (ErrorKind, String)> {
    let normal = normalize(raw_path).map_err(|why| (ErrorKind::InvalidPath, format!("invalid path: {why}")))?;
    let climbed = |r: &Route| {
        let msg = format!("invalid path: it climbs above the route's prefix {}", r.path_prefix);
        (ErrorKind::InvalidPath, msg)
    };
    let entered = normal.entry.as_deref().and_then(|e| find(routes, e, headers));
    if let Some(r) = entered
        .and_then(|i| routes.get(i))
        .filter(|r| normal.escapes(&r.path_prefix))
    {
        return Err(climbed(r));
    }
    let Some(index) = find(routes, &normal.path, headers) else {
        return Err((ErrorKind::NoRoute, format!("no route for {}", normal.path)));
    };
    match routes.get(index) {
        Some(r) if normal.escapes(&r.path_prefix) => Err(climbed(r)),
        _ => Ok(Routed {
            index,
            path: normal.path,
        }),
    }
}

/// A request path after normalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalPath {
    /// Starts with `/`; no empty, `.` or `..` segment; no `%2e`.
    pub path: String,
    /// The fewest segments left by any `..` on the way (`None`: there was no `..`). A route whose
    /// prefix has more segments than this was climbed out of.
    pub low_water: Option<usize>,
    /// The path as it stood before its first `..`: where the client entered.
    pub entry: Option<String>,
}

impl NormalPath {
    /// Whether a `..` climbed above `prefix` on the way to this path.
    pub fn escapes(&self, prefix: &str) -> bool {
        let depth = prefix.split('/').filter(|s| !s.is_empty()).count();
        self.low_water.is_some_and(|low| low < depth)
    }
}

/// RFC 3986 dot-segment removal on the path as sent, after decoding percent-encoded dots; repeated
/// slashes collapse. Refused: a path that climbs above the root, an encoded `/`, `\` or NUL, a
/// raw `\`, a segment of three or more dots, or a path not starting with `/`.
pub fn normalize(raw: &str) -> Result<NormalPath, &'static str> {
    let Some(rest) = raw.strip_prefix('/') else {
        return Err("the path must start with /");
    };
    let mut segments: Vec<std::borrow::Cow<'_, str>> = Vec::new();
    let mut low_water = None;
    let mut entry = None;
    for seg in rest.split('/').filter(|s| !s.is_empty()) {
        let seg = decode_dots(seg)?;
        match &*seg {
            "." => {}
            ".." => {
                if entry.is_none() {
                    entry = Some(join(&segments));
                }
                if segments.pop().is_none() {
                    return Err("the path climbs above the root");
                }
                low_water = Some(low_water.map_or(segments.len(), |l: usize| l.min(segments.len())));
            }
            s if s.bytes().all(|b| b == b'.') => return Err("a path segment made of dots"),
            _ => segments.push(seg),
        }
    }
    let mut path = join(&segments);
    if path.len() > 1 && raw.ends_with('/') {
        path.push('/');
    }
    Ok(NormalPath { path, low_water, entry })
}

fn join(segments: &[std::borrow::Cow<'_, str>]) -> String {
    let mut path = String::with_capacity(segments.iter().map(|s| s.len() + 1).sum::<usize>().max(1));
    for seg in segments {
        path.push('/');
        path.push_str(seg);
    }
    if path.is_empty() {
        path.push('/');
    }
    path
}

/// `%2e` / `%2E` decoded to `.`; encoded `/`, `\` and NUL, and a raw `\`, refused. Other escapes
/// pass as they are.
fn decode_dots(seg: &str) -> Result<std::borrow::Cow<'_, str>, &'static str> {
    if seg.contains('\\') {
        return Err("a backslash in the path");
    }
    if !seg.contains('%') {
        return Ok(seg.into());
    }
    let b = seg.as_bytes();
    let mut out = String::with_capacity(seg.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b'.') => {
                    out.push('.');
                    i += 3;
                    continue;
                }
                Some(b'/') | Some(b'\\') | Some(0) => return Err("an encoded /, \\ or NUL in the path"),
                _ => {}
            }
        }
        let ch_len = seg[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&seg[i..i + ch_len]);
        i += ch_len;
    }
    Ok(out.into())
}

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
            target: crate::config::RouteTarget::Pool(0),
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
    fn normalises_paths_and_refuses_escapes() {
        let n = |p: &str| normalize(p).map(|n| n.path);
        assert_eq!(
            n("/anthropic//v1///messages").as_deref(),
            Ok("/anthropic/v1/messages"),
            "repeated slashes"
        );
        assert_eq!(n("/a/./b/../c").as_deref(), Ok("/a/c"), "dot segments");
        assert_eq!(n("/a/%2e%2E/b").as_deref(), Ok("/b"), "encoded dots are dots");
        assert_eq!(n("/a/v1%2emessages").as_deref(), Ok("/a/v1.messages"), "no %2e left");
        assert_eq!(n("/a/x%20y").as_deref(), Ok("/a/x%20y"), "other escapes kept");
        assert_eq!(n("/").as_deref(), Ok("/"), "root");
        assert_eq!(n("/a/b/").as_deref(), Ok("/a/b/"), "a trailing slash is kept");
        for bad in [
            "/..",
            "/a/../..",
            "/a/%2e%2e/%2E%2e",
            "/a%2fb",
            "/a%5Cb",
            "/a\\b",
            "/a%00",
            "/a/...",
            "x",
        ] {
            assert!(normalize(bad).is_err(), "{bad} must be refused");
        }
        let climbed = normalize("/anthropic/../openai/v1/chat/completions").expect("within root");
        assert_eq!(climbed.path, "/openai/v1/chat/completions", "resolved");
        assert!(climbed.escapes("/openai"), "climbed out of /anthropic into /openai");
        assert!(!climbed.escapes("/"), "the root route is never climbed out of");
        let inside = normalize("/openai/v1/../v1/models").expect("ok");
        assert!(!inside.escapes("/openai"), "stays under the prefix");
        assert!(inside.escapes("/openai/v1"), "but climbs above a deeper prefix");
    }

    #[test]
    fn finds_query_key() {
        assert_eq!(query_key(Some("alt=sse&key=abc")), Some("abc"));
        assert_eq!(query_key(Some("keys=abc")), None);
        assert_eq!(query_key(None), None);
    }
}
