//! A [`Chat`] as a Gemini `generateContent` request: roles `user` and `model`, the system
//! prompt in `systemInstruction`, tool results as `functionResponse` parts matched by function
//! NAME, tool schemas cut down to what Gemini's schema accepts, images by value only.

use serde_json::{json, Value};

use crate::provider::Dialect;
use crate::translate::common::{self, Obj};
use crate::translate::form::{Chat, Image, Invalid, Part, ResponseFormat, Role, ToolChoice, ToolResult};
use crate::translate::EncodeOpts;

const TARGET: Dialect = Dialect::Gemini;

pub(in crate::translate) fn encode(
    chat: &Chat,
    model: &str,
    opts: &EncodeOpts,
    dropped: &mut Vec<&'static str>,
) -> Result<(String, Obj), Invalid> {
    let model = model.strip_prefix("models/").unwrap_or(model);
    // The model is part of the path: nothing in it may change the path.
    if model.is_empty() || !model.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return Err(Invalid::new("model", "not a valid Gemini model name"));
    }
    let path = if chat.stream {
        format!("/v1beta/models/{model}:streamGenerateContent?alt=sse")
    } else {
        format!("/v1beta/models/{model}:generateContent")
    };
    let mut body = Obj::new();
    let system = common::system_texts(chat, dropped);
    if !system.is_empty() {
        let parts: Vec<Value> = system.iter().map(|t| json!({"text": t})).collect();
        body.insert("systemInstruction".into(), json!({"parts": parts}));
    }
    body.insert("contents".into(), Value::Array(contents(chat)?));
    tools(chat, &mut body)?;
    let config = generation(chat);
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    if chat.user.is_some() {
        common::note(dropped, "user"); // Gemini has no end-user field; it changes no answer
    }
    common::single_answer(chat, TARGET)?;
    common::other_members(chat, TARGET, &mut body, dropped)?;
    common::extra(chat, opts, &mut body, dropped);
    Ok((path, body))
}

fn generation(chat: &Chat) -> Obj {
    let mut config = Obj::new();
    let mut put = |key: &str, value: Value| {
        config.insert(key.into(), value);
    };
    if let Some(n) = chat.max_tokens {
        put("maxOutputTokens", n.into());
    }
    if let Some(t) = chat.temperature {
        put("temperature", t.into());
    }
    if let Some(p) = chat.top_p {
        put("topP", p.into());
    }
    if let Some(k) = chat.top_k {
        put("topK", k.into());
    }
    if !chat.stop.is_empty() {
        put("stopSequences", chat.stop.clone().into());
    }
    match &chat.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => put("responseMimeType", "application/json".into()),
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            put("responseMimeType", "application/json".into());
            put("responseSchema", clean_schema(schema));
        }
    }
    config
}

/// Contents with roles mapped, empty ones left out, neighbours of one role merged (the
/// answers to parallel calls then share one content, as Gemini wants).
fn contents(chat: &Chat) -> Result<Vec<Value>, Invalid> {
    let mut out: Vec<(&str, Vec<Value>)> = Vec::with_capacity(chat.messages.len());
    for (i, m) in chat.messages.iter().enumerate() {
        let role = match m.role {
            Role::System => continue, // in systemInstruction
            Role::User | Role::Tool => "user",
            Role::Assistant => "model",
        };
        let mut parts = Vec::with_capacity(m.parts.len());
        let mut calls = 0;
        for (j, part) in m.parts.iter().enumerate() {
            match part {
                Part::Text(t) if t.is_empty() => {}
                Part::Text(t) => parts.push(json!({"text": t})),
                Part::Image(image) => parts.push(inline(image, || common::part_param(i, j))?),
                Part::ToolCall(c) => {
                    calls += 1;
                    let args = common::arguments(&c.arguments, || common::arguments_param(chat, i, j, calls - 1))?;
                    parts.push(json!({"functionCall": {"name": c.name, "args": args}}));
                }
                Part::ToolResult(r) => function_response(chat, r, i, j, &mut parts)?,
                Part::Native(n) => parts.push(common::native(chat, TARGET, n)?.clone()),
            }
        }
        match out.last_mut() {
            _ if parts.is_empty() => {}
            Some((last, previous)) if *last == role => previous.extend(parts),
            _ => out.push((role, parts)),
        }
    }
    Ok(out
        .into_iter()
        .map(|(role, parts)| json!({"role": role, "parts": parts}))
        .collect())
}

/// An image by value; Gemini cannot take a URL, and the sidecar never fetches one.
fn inline(image: &Image, param: impl FnOnce() -> String) -> Result<Value, Invalid> {
    match image {
        Image::Base64 { media_type, data } => Ok(json!({"inlineData": {"mimeType": media_type, "data": data}})),
        Image::Url(_) => Err(Invalid::new(
            param(),
            "image URLs are not supported by this model's Gemini backend: send the image as a base64 data URL",
        )),
    }
}

/// A tool result as a `functionResponse` named after the call it answers (Gemini matches by
/// name). `response` must be an object: a JSON object result is used as it is, other text is
/// wrapped as `{"content": text}` (`{"error": text}` for an error). Images follow as parts.
fn function_response(chat: &Chat, r: &ToolResult, i: usize, j: usize, parts: &mut Vec<Value>) -> Result<(), Invalid> {
    let name = r.name.as_deref().or_else(|| common::call_name(chat, &r.tool_call_id));
    let Some(name) = name else {
        let param = match chat.source {
            Dialect::OpenAi => format!("messages[{i}].tool_call_id"),
            _ => format!("{}.tool_use_id", common::part_param(i, j)),
        };
        return Err(Invalid::new(param, "no earlier tool call has this id"));
    };
    let texts: Vec<&str> = r
        .content
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    let text = texts.join("\n\n");
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) if !r.is_error => v,
        _ if r.is_error => json!({ "error": text }),
        _ => json!({ "content": text }),
    };
    parts.push(json!({"functionResponse": {"name": name, "response": response}}));
    for (k, p) in r.content.iter().enumerate() {
        match p {
            Part::Text(_) => {}
            Part::Image(image) => parts.push(inline(image, || format!("{}.content[{k}]", common::part_param(i, j)))?),
            Part::Native(n) => parts.push(common::native(chat, TARGET, n)?.clone()),
            Part::ToolCall(_) | Part::ToolResult(_) => {}
        }
    }
    Ok(())
}

fn tools(chat: &Chat, body: &mut Obj) -> Result<(), Invalid> {
    if chat.tools.is_empty() {
        return Ok(());
    }
    let mut declarations = Vec::with_capacity(chat.tools.len());
    for tool in &chat.tools {
        if let Some(n) = &tool.native {
            return Err(common::refuse(n.param.clone(), TARGET));
        }
        let mut d = Obj::new();
        d.insert("name".into(), tool.name.clone().into());
        if let Some(desc) = &tool.description {
            d.insert("description".into(), desc.clone().into());
        }
        // Gemini refuses an object schema without properties: no parameters is the same.
        let schema = clean_schema(&tool.schema);
        if schema
            .get("properties")
            .and_then(Value::as_object)
            .is_some_and(|p| !p.is_empty())
        {
            d.insert("parameters".into(), schema);
        }
        declarations.push(Value::Object(d));
    }
    body.insert("tools".into(), json!([{ "functionDeclarations": declarations }]));
    if chat.parallel_tool_calls == Some(false) && chat.tool_choice != Some(ToolChoice::None) {
        return Err(common::refuse("parallel_tool_calls", TARGET)); // Gemini cannot be held to one call
    }
    let config = match &chat.tool_choice {
        None => return Ok(()),
        Some(ToolChoice::Auto) => json!({"mode": "AUTO"}),
        Some(ToolChoice::None) => json!({"mode": "NONE"}),
        Some(ToolChoice::Required) => json!({"mode": "ANY"}),
        Some(ToolChoice::Named(name)) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
    };
    body.insert("toolConfig".into(), json!({ "functionCallingConfig": config }));
    Ok(())
}

/// The keys of a JSON schema that Gemini's `Schema` accepts as they are.
const KEEP: [&str; 20] = [
    "description",
    "enum",
    "example",
    "format",
    "maxItems",
    "maxLength",
    "maxProperties",
    "maximum",
    "minItems",
    "minLength",
    "minProperties",
    "minimum",
    "nullable",
    "pattern",
    "propertyOrdering",
    "required",
    "title",
    "type",
    "default",
    "anyOf",
];

/// A JSON schema cut down to the keys Gemini's `Schema` accepts (it refuses the request for
/// `$schema`, `additionalProperties` and other unknown keys), recursively; a `type` list with
/// `null` becomes `nullable`, `const` a one-value `enum`.
pub(in crate::translate) fn clean_schema(schema: &Value) -> Value {
    let Value::Object(o) = schema else {
        return schema.clone();
    };
    let mut out = Obj::new();
    for (key, value) in o {
        match (key.as_str(), value) {
            ("properties", Value::Object(props)) => {
                let props = props.iter().map(|(k, v)| (k.clone(), clean_schema(v))).collect();
                out.insert(key.clone(), Value::Object(props));
            }
            ("items", v) => {
                out.insert(key.clone(), clean_schema(v));
            }
            ("anyOf", Value::Array(list)) => {
                out.insert(key.clone(), list.iter().map(clean_schema).collect());
            }
            ("type", Value::Array(types)) => {
                let non_null = types.iter().find(|t| t.as_str() != Some("null"));
                if let Some(t) = non_null {
                    out.insert(key.clone(), t.clone());
                }
                if types.iter().any(|t| t.as_str() == Some("null")) {
                    out.insert("nullable".into(), true.into());
                }
            }
            ("const", v) => {
                out.insert("enum".into(), json!([v]));
            }
            (k, v) if KEEP.contains(&k) => {
                out.insert(key.clone(), v.clone());
            }
            _ => {}
        }
    }
    Value::Object(out)
}
