//! Browser access (CORS): which origins may call the sidecar, the preflight answer, and the
//! headers every response to an allowed origin carries. Preflights are answered by the sidecar
//! itself and never forwarded; an origin not allowed gets no `access-control-*` header at all.

use http::header::{HeaderName, HeaderValue};
use pingora::http::ResponseHeader;

use crate::config::raw::RawCors;

/// Methods a browser may use (the ones the sidecar forwards, and the preflight itself).
const ALLOW_METHODS: HeaderValue = HeaderValue::from_static("GET, POST, DELETE, OPTIONS");

/// Response headers a browser script may read.
const EXPOSE: HeaderValue = HeaderValue::from_static(
    "x-request-id, retry-after, x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset, \
     x-llm-sidecar-error, x-llm-sidecar-pool, x-llm-sidecar-account, x-llm-sidecar-model, \
     x-llm-sidecar-degraded, x-session-id",
);

/// The request headers the official SDKs send from a browser, allowed when the config names none.
const SDK_HEADERS: &str = "authorization, content-type, x-api-key, x-goog-api-key, anthropic-version, \
     anthropic-beta, anthropic-dangerous-direct-browser-access, openai-organization, openai-project, \
     x-session-id, x-request-id, x-stainless-arch, x-stainless-lang, x-stainless-os, \
     x-stainless-package-version, x-stainless-retry-count, x-stainless-runtime, \
     x-stainless-runtime-version, x-stainless-timeout, x-stainless-helper-method, x-goog-api-client";

/// `cors:` as the request path uses it.
#[derive(Debug)]
pub struct Cors {
    /// `["*"]`: any origin (answered with `*`).
    any: bool,
    origins: Vec<HeaderValue>,
    allow_headers: HeaderValue,
    max_age: HeaderValue,
}

impl Cors {
    /// Validate `raw`; an error is (path, message).
    pub fn build(raw: &RawCors) -> Result<Cors, (String, String)> {
        let any = raw.allow_origins.iter().any(|o| o == "*");
        if raw.allow_origins.is_empty() {
            return Err(("cors.allow_origins".into(), "list at least one origin, or \"*\"".into()));
        }
        if any && raw.allow_origins.len() > 1 {
            return Err((
                "cors.allow_origins".into(),
                "\"*\" cannot be combined with other origins".into(),
            ));
        }
        let mut origins = Vec::new();
        for (i, o) in raw.allow_origins.iter().enumerate().filter(|_| !any) {
            let ok = (o.starts_with("https://") || o.starts_with("http://")) && !o.ends_with('/');
            match HeaderValue::from_str(o) {
                Ok(v) if ok => origins.push(v),
                _ => {
                    let msg = format!("{o:?} is not an origin like https://app.example (scheme, host, optional port)");
                    return Err((format!("cors.allow_origins[{i}]"), msg));
                }
            }
        }
        let allow_headers = match &raw.allow_headers {
            None => HeaderValue::from_static(SDK_HEADERS),
            Some(list) => {
                for (i, h) in list.iter().enumerate() {
                    if HeaderName::from_bytes(h.as_bytes()).is_err() {
                        return Err((
                            format!("cors.allow_headers[{i}]"),
                            format!("{h:?} is not a header name"),
                        ));
                    }
                }
                HeaderValue::from_str(&list.join(", "))
                    .map_err(|_| ("cors.allow_headers".to_string(), "not valid header names".to_string()))?
            }
        };
        Ok(Cors {
            any,
            origins,
            allow_headers,
            max_age: HeaderValue::from(raw.max_age.0.as_secs()),
        })
    }

    /// The `access-control-allow-origin` value for a request from `origin`, when it is allowed.
    pub fn allowed(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        let origin = origin?;
        if self.any {
            return Some(HeaderValue::from_static("*"));
        }
        self.origins.iter().any(|o| o == origin).then(|| origin.clone())
    }

    /// The headers of the answer to a preflight from an allowed origin.
    pub fn preflight(&self, allow_origin: &HeaderValue, resp: &mut ResponseHeader) -> pingora::Result<()> {
        add_response_headers(allow_origin, resp)?;
        resp.insert_header("access-control-allow-methods", ALLOW_METHODS)?;
        resp.insert_header("access-control-allow-headers", self.allow_headers.clone())?;
        resp.insert_header("access-control-max-age", self.max_age.clone())?;
        Ok(())
    }
}

/// The headers every response to an allowed origin carries.
pub fn add_response_headers(allow_origin: &HeaderValue, resp: &mut ResponseHeader) -> pingora::Result<()> {
    resp.insert_header("access-control-allow-origin", allow_origin.clone())?;
    resp.insert_header("access-control-expose-headers", EXPOSE)?;
    if allow_origin != "*" {
        resp.append_header(http::header::VARY, "origin")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::Dur;

    fn raw(origins: &[&str]) -> RawCors {
        RawCors {
            allow_origins: origins.iter().map(|s| s.to_string()).collect(),
            allow_headers: None,
            max_age: Dur(std::time::Duration::from_secs(600)),
        }
    }

    #[test]
    fn only_listed_origins_are_allowed() {
        let c = Cors::build(&raw(&["https://app.example", "http://localhost:3000"])).expect("valid");
        let ok = HeaderValue::from_static("https://app.example");
        assert_eq!(c.allowed(Some(&ok)), Some(ok.clone()), "listed origin is echoed");
        let evil = HeaderValue::from_static("https://evil.example");
        assert_eq!(c.allowed(Some(&evil)), None, "unlisted origin gets nothing");
        assert_eq!(c.allowed(None), None, "no origin, no CORS");
        let any = Cors::build(&raw(&["*"])).expect("valid");
        assert_eq!(
            any.allowed(Some(&evil)),
            Some(HeaderValue::from_static("*")),
            "wildcard"
        );
    }

    #[test]
    fn bad_origins_are_refused_with_their_path() {
        let e = Cors::build(&raw(&["app.example"])).expect_err("no scheme");
        assert_eq!(e.0, "cors.allow_origins[0]", "{e:?}");
        let e = Cors::build(&raw(&["*", "https://a"])).expect_err("mixed");
        assert_eq!(e.0, "cors.allow_origins", "{e:?}");
        assert!(Cors::build(&raw(&[])).is_err(), "empty list refused");
    }

    #[test]
    fn preflight_headers() {
        let c = Cors::build(&raw(&["https://app.example"])).expect("valid");
        let mut resp = ResponseHeader::build(204, None).expect("head");
        let origin = HeaderValue::from_static("https://app.example");
        c.preflight(&origin, &mut resp).expect("headers");
        let h = |n: &str| {
            resp.headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        assert_eq!(h("access-control-allow-origin"), "https://app.example", "origin echoed");
        assert_eq!(h("access-control-max-age"), "600", "max age in seconds");
        assert!(
            h("access-control-allow-headers").contains("x-api-key"),
            "SDK headers allowed"
        );
        assert!(h("access-control-allow-methods").contains("POST"), "methods");
        assert!(
            h("access-control-expose-headers").contains("retry-after"),
            "expose retry-after"
        );
        assert_eq!(h("vary"), "origin", "echoed origins vary by origin");
    }
}
