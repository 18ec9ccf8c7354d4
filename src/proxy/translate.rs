//! The seam between the client's API dialect and the target's. A pass-through route (one with a
//! `pool`) needs none: the client speaks its pool's API. A front door (`api: openai | anthropic`)
//! plans here, after admission: the endpoint (`GET` models answered at once), the request read
//! in the door's dialect with its checks, the model resolved to targets (a `models` entry, an
//! explicit pool, or `POOL/MODEL`), and each target's upstream request prepared once; then, per
//! attempt, the replayed body and path become the current target's. The way back is
//! [`super::reply`].

use std::sync::Arc;

use bytes::Bytes;

use super::reply::{Reply, ReplyParts};
use super::respond::{Early, ErrorKind, Refusal};
use super::view::View;
use crate::alloc::pick::{Step, Walk};
use crate::config::raw::Strategy;
use crate::config::{Pool, Snapshot, Target};
use crate::provider::{Dialect, ProviderKind};
use crate::translate::{self, Chat, EncodeOpts, DOOR_FIELDS};
use crate::usage::price;
use crate::validate::BodyInfo;

/// What planning needs from the request beyond the common view.
pub trait TranslateCtx: View {
    /// The translation stage's own part of the request's state.
    fn translation_mut(&mut self) -> &mut Translation;
    /// The route-relative path (the door's endpoint).
    fn route_path(&self) -> &str;
    /// The body as admitted.
    fn admitted_body(&self) -> Bytes;
    /// Walk these pools for the attempts; the request's facts for logs and stickiness.
    fn planned(&mut self, walk: Walk, stream: bool, model: String, session: Option<String>);
}

/// The translation a request needs: none for a pass-through route.
#[derive(Default)]
pub struct Translation {
    door: Option<Box<Door>>,
}

/// A front-door request: the client's request, its targets, and each target's upstream request.
struct Door {
    dialect: Dialect,
    chat: Chat,
    targets: Vec<Target>,
    prepared: Vec<Option<Prepared>>,
    /// The target of the current attempt.
    current: Option<usize>,
    reply: Reply,
}

/// One target's upstream request.
struct Prepared {
    path: String,
    body: Bytes,
    /// Speaks the client's dialect: the answer passes as it is.
    same: bool,
    /// The usage-only chunk the sidecar asked for is removed (a same-dialect OpenAI stream).
    strip: bool,
    /// What the client sent that this target does not get (for `x-llm-sidecar-dropped`).
    dropped: Vec<&'static str>,
    /// The client's Claude Code CLI fields are dropped: an API target served instead (the
    /// model's `degrade: true`).
    degraded: bool,
}

impl Translation {
    /// The client's dialect when the request came through a front door.
    /// Set the current attempt's target; its path and body (`None`: a pass-through request).
    pub fn attempt(&mut self, target: Option<usize>) -> Option<(&str, Bytes)> {
        let door = self.door.as_mut()?;
        door.current = target;
        let p = door.prepared.get(target?)?.as_ref()?;
        Some((&p.path, p.body.clone()))
    }

    /// The current target's upstream path and body length (front doors).
    pub fn current(&self) -> Option<(&str, usize)> {
        let door = self.door.as_ref()?;
        let p = door.prepared.get(door.current?)?.as_ref()?;
        Some((&p.path, p.body.len()))
    }

    /// The current target got the request without its CLI fields (`degrade: true`).
    pub fn degraded(&self) -> bool {
        let Some(door) = self.door.as_ref() else { return false };
        door.current
            .and_then(|i| door.prepared.get(i)?.as_ref())
            .is_some_and(|p| p.degraded)
    }

    /// Whether the usage-only chunk is removed from the current target's stream.
    pub fn strip_usage(&self) -> Option<bool> {
        let door = self.door.as_ref()?;
        Some(door.prepared.get(door.current?)?.as_ref()?.strip)
    }

    /// A translated stream cut short: the error event that ends it for the client.
    pub fn stream_tail(&mut self) -> Option<Bytes> {
        super::reply::tail(&mut self.door.as_mut()?.reply)
    }

    /// The answer's translation (front doors): the client's dialect, the current target's model
    /// and what it was not sent, and whether the answer passes as it is.
    pub fn reply_parts(&mut self) -> Option<ReplyParts<'_>> {
        let door = self.door.as_mut()?;
        let i = door.current?;
        let p = door.prepared.get(i)?.as_ref()?;
        Some(ReplyParts {
            client: door.dialect,
            client_model: &door.chat.model,
            target_model: door.targets.get(i).map_or("", |t| &*t.model),
            same: p.same,
            dropped: &p.dropped,
            degraded: p.degraded,
            include_usage: door.chat.include_usage,
            reply: &mut door.reply,
        })
    }
}

/// Plan a front-door request (`None` for a pass-through route, and when the request goes on to
/// the upstream); an `Early` is the door's own answer.
pub fn plan(ctx: &mut impl TranslateCtx) -> Option<Early> {
    let snap = ctx.snapshot()?;
    let dialect = match ctx.route()?.target {
        crate::config::RouteTarget::Door(d) => d,
        crate::config::RouteTarget::Pool(_) => return None,
    };
    let endpoint = match endpoint(dialect, ctx.route_path(), snap) {
        Ok(e) => e,
        Err(early) => return Some(early),
    };
    let body = ctx.admitted_body();
    let chat = match translate::decode_request(dialect, &body) {
        Ok(chat) => chat,
        Err(invalid) => return Some(refuse(ErrorKind::InvalidRequest, invalid.to_string())),
    };
    let pool = endpoint.or_else(|| chat.backend.as_deref().and_then(|b| snap.pool_index(b)));
    if let (None, Some(b)) = (pool, chat.backend.as_deref().filter(|_| endpoint.is_none())) {
        return Some(refuse(
            ErrorKind::ModelNotFound,
            format!("backend: no pool named {b:?}"),
        ));
    }
    let targets = match resolve(snap, pool, &chat.model, body.len()) {
        Ok(t) => t,
        Err(message) => return Some(refuse(ErrorKind::ModelNotFound, message)),
    };
    let degrade = pool.is_none() && snap.model(&chat.model).is_some_and(|m| m.degrade);
    let fields = cli_fields(&chat);
    let targets = match by_need(snap, &chat, &fields, targets, degrade) {
        Ok(t) => t,
        Err(message) => return Some(refuse(ErrorKind::InvalidRequest, message)),
    };
    let (prepared, first_error) = prepare_all(snap, dialect, &chat, &body, &targets, !fields.is_empty());
    let steps = steps(snap, &targets, &prepared);
    let Some(walk) = Walk::over(steps) else {
        let message = first_error.unwrap_or_else(|| "no target can serve this request".into());
        return Some(refuse(ErrorKind::InvalidRequest, message));
    };
    let session = chat
        .session_id
        .clone()
        .or_else(|| user_session(dialect, chat.user.as_deref()));
    let model = chat.model.clone();
    let door = Door {
        dialect,
        chat,
        targets,
        prepared,
        current: None,
        reply: Reply::default(),
    };
    let stream = door.chat.stream;
    ctx.translation_mut().door = Some(Box::new(door));
    ctx.planned(walk, stream, model, session);
    None
}

fn refuse(kind: ErrorKind, message: String) -> Early {
    Early::Refuse(Refusal::new(kind, message))
}

/// The door's endpoint: `Ok(Some(pool))` for `/{pool}/chat/completions`, `Ok(None)` for the
/// plain one; the model list, or 404, as the door's own answer.
fn endpoint(dialect: Dialect, path: &str, snap: &Snapshot) -> Result<Option<usize>, Early> {
    let path = path.split('?').next().unwrap_or(path);
    let names = || snap.models.iter().map(|m| &*m.name).collect::<Vec<_>>();
    let now = (crate::clock::now_ms() / 1000).max(0) as u64;
    match (dialect, path) {
        (Dialect::OpenAi, "/chat/completions") | (Dialect::Anthropic, "/v1/messages") => Ok(None),
        (Dialect::OpenAi, "/models") | (Dialect::Anthropic, "/v1/models") => Err(Early::Json(
            200,
            Bytes::from(translate::model_list(dialect, &names(), now)),
        )),
        (Dialect::OpenAi, p) => {
            let pool = p.strip_suffix("/chat/completions").map(|p| p.trim_start_matches('/'));
            match pool.map(|name| (name, snap.pool_index(name))) {
                Some((_, Some(i))) => Ok(Some(i)),
                Some((name, None)) => Err(refuse(ErrorKind::ModelNotFound, format!("no pool named {name:?}"))),
                None => Err(refuse(
                    ErrorKind::NoRoute,
                    format!("this front door has no endpoint {p}"),
                )),
            }
        }
        (_, p) => Err(refuse(
            ErrorKind::NoRoute,
            format!("this front door has no endpoint {p}"),
        )),
    }
}

/// The targets serving `model`: an explicit pool's, a `models` entry's (cheapest first when
/// asked), or `POOL/MODEL`'s.
fn resolve(snap: &Snapshot, pool: Option<usize>, model: &str, input_bytes: usize) -> Result<Vec<Target>, String> {
    if let Some(pool) = pool {
        return Ok(vec![target(pool, model)]);
    }
    if let Some(m) = snap.model(model) {
        let mut targets = m.targets.clone();
        if m.strategy == Strategy::Cheapest {
            // The request's input, roughly: four bytes a token.
            let tokens = input_bytes as f64 / 4.0;
            let cost = |t: &Target| {
                let p = snap.prices.iter().find(|p| price::glob(&p.model, &t.model));
                p.map_or(f64::INFINITY, |p| p.input * tokens)
            };
            targets.sort_by(|a, b| cost(a).total_cmp(&cost(b)));
        }
        return Ok(targets);
    }
    if let Some((pool, rest)) = model.split_once('/') {
        if let Some(i) = snap.pool_index(pool) {
            return Ok(vec![target(i, rest)]);
        }
    }
    let names: Vec<&str> = snap.models.iter().map(|m| &*m.name).collect();
    let pools: Vec<&str> = snap.pools.iter().map(|p| &*p.name).collect();
    Err(format!(
        "model {model:?} is not served here: use one of [{}], or POOL/MODEL with a pool of [{}]",
        names.join(", "),
        pools.join(", ")
    ))
}

fn target(pool: usize, model: &str) -> Target {
    Target {
        pool,
        model: Arc::from(model),
    }
}

/// Each target's upstream request; a target that cannot honour the request gets none (the first
/// reason is kept, for when none can).
fn prepare_all(
    snap: &Snapshot,
    dialect: Dialect,
    chat: &Chat,
    body: &Bytes,
    targets: &[Target],
    needs_cli: bool,
) -> (Vec<Option<Prepared>>, Option<String>) {
    let mut first_error = None;
    let prepared = targets
        .iter()
        .map(|t| {
            let pool = snap.pools.get(t.pool)?;
            prepare(pool, dialect, chat, body, &t.model, needs_cli)
                .map_err(|e| first_error.get_or_insert(e).clone())
                .ok()
        })
        .collect();
    (prepared, first_error)
}

fn prepare(
    pool: &Pool,
    client: Dialect,
    chat: &Chat,
    body: &Bytes,
    model: &str,
    needs_cli: bool,
) -> Result<Prepared, String> {
    let target = pool.provider.dialect();
    let cli = pool.cli.is_some();
    let degraded = !cli && needs_cli;
    if target == client {
        let mut drop: Vec<&str> = DOOR_FIELDS.to_vec();
        if !cli {
            drop.extend(translate::EXTRA_FIELDS);
        }
        let same = translate::passthrough(body, model, &drop).ok_or("the request body is not a JSON object")?;
        let path = match client {
            Dialect::OpenAi => "/v1/chat/completions",
            _ => "/v1/messages",
        };
        let info = BodyInfo {
            stream: Some(chat.stream),
            ..BodyInfo::default()
        };
        let (body, strip) = pool.provider.prepare_body(path, &info, Bytes::from(same));
        return Ok(Prepared {
            path: path.into(),
            body,
            same: true,
            strip,
            dropped: Vec::new(),
            degraded,
        });
    }
    let opts = EncodeOpts {
        default_max_tokens: pool.default_max_tokens,
        keep_extra: cli,
    };
    let encoded = translate::encode_request(target, chat, model, &opts).map_err(|e| e.to_string())?;
    Ok(Prepared {
        path: encoded.path,
        body: Bytes::from(encoded.body),
        same: false,
        strip: false,
        dropped: encoded.dropped,
        degraded,
    })
}

/// The Claude Code CLI fields that need a claude-cli target (present and not empty).
fn cli_fields(chat: &Chat) -> Vec<&'static str> {
    const ONLY_THE_CLI: [&str; 5] = [
        "allowed_tools",
        "disallowed_tools",
        "working_directory",
        "context_files",
        "add_dirs",
    ];
    ONLY_THE_CLI
        .into_iter()
        .filter(|f| {
            chat.extra.get(*f).is_some_and(|v| match v {
                serde_json::Value::Null => false,
                serde_json::Value::String(s) => !s.is_empty(),
                serde_json::Value::Array(a) => !a.is_empty(),
                _ => true,
            })
        })
        .collect()
}

/// Routing by need: a request with CLI fields goes to claude-cli targets; API targets come after
/// them only when the model allows degrading (the fields are then dropped, and said so).
fn by_need(
    snap: &Snapshot,
    chat: &Chat,
    fields: &[&str],
    targets: Vec<Target>,
    degrade: bool,
) -> Result<Vec<Target>, String> {
    if fields.is_empty() {
        return Ok(targets);
    }
    let is_cli = |t: &Target| snap.pools.get(t.pool).is_some_and(|p| p.cli.is_some());
    let (cli, api): (Vec<Target>, Vec<Target>) = targets.into_iter().partition(is_cli);
    if cli.is_empty() {
        return Err(format!(
            "{} can only be served by a claude-cli target, and model {:?} has none",
            fields.join(", "),
            chat.model
        ));
    }
    Ok(if degrade {
        cli.into_iter().chain(api).collect()
    } else {
        cli
    })
}

/// The walk: each target that can serve, its pool then that pool's fallbacks.
fn steps(snap: &Snapshot, targets: &[Target], prepared: &[Option<Prepared>]) -> Vec<Step> {
    let mut steps = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        if prepared.get(i).is_none_or(Option::is_none) {
            continue;
        }
        let fallbacks = snap.pools.get(t.pool).map_or(&[][..], |p| &p.fallback[..]);
        for pool in std::iter::once(t.pool).chain(fallbacks.iter().copied()) {
            let step = Step { pool, target: i };
            if !steps.contains(&step) {
                steps.push(step);
            }
        }
    }
    steps
}

/// The session an Anthropic body names in `metadata.user_id` (Claude Code's JSON form too), from
/// the request already read (no second parse of the body).
fn user_session(dialect: Dialect, user: Option<&str>) -> Option<String> {
    if dialect != Dialect::Anthropic {
        return None;
    }
    let info = BodyInfo {
        metadata: Some(serde_json::json!({ "user_id": user? })),
        ..BodyInfo::default()
    };
    ProviderKind::Anthropic
        .get()
        .body_session(&info)
        .filter(|s| crate::validate::valid_id(s.as_bytes()))
}
