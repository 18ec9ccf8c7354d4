#!/usr/bin/env bash
# Seed corpora for the fuzz targets, fuzz/corpus/<target>/seed-*, from the repository's own
# fixtures: tests/fixtures (translation goldens, recorded Claude Code CLI output), the shared CLI
# recordings next to the repository (../shared/claude-cli, when present), conf/*.yaml and the
# load-test bodies in benches/load, plus a few hand-written samples of shapes no fixture has
# (usage-only chunks, Responses API events, CRLF streams, climbing paths).
#
# Split-based targets (sse_meter, json_usage, translate_stream, cli_stream_json) read two header
# bytes first (flags, number of cuts: see fuzz/src/lib.rs); admission, translate_request and
# translate_response one (flags); config and path none. Each seed gets its header here.
#
# Inputs in fuzz/regressions/<target>/ (crashes once found, kept in git) are copied in as they are.
#
# Idempotent: it rewrites the same seed-* files each time and leaves what the fuzzer added alone.
# Converting the stream goldens (JSON lists of events) back to SSE needs python3; without it
# those seeds are skipped.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
corpus="$here/corpus"
translate="$root/tests/fixtures/translate"
cli_dirs=("$root/tests/fixtures/claude-cli" "$root/../shared/claude-cli")

# seed TARGET NAME HEADER [FILE]: HEADER (backslash escapes, e.g. '\x00') then FILE (default:
# stdin) written as corpus/TARGET/seed-NAME.
seed() {
    local target=$1 name=$2 header=$3 file=${4:--}
    mkdir -p "$corpus/$target"
    { printf '%b' "$header"; cat -- "$file"; } >"$corpus/$target/seed-$name"
}

# Existing files matching the patterns (none: nothing, not the pattern itself).
files() {
    local f
    for f in "$@"; do
        [ -f "$f" ] && printf '%s\n' "$f"
    done
    return 0
}

# The `data: {...}` payloads of an SSE file, one per line.
data_lines() {
    sed -n 's/^data: \({.*\)$/\1/p' "$1" | tr -d '\r'
}

# A golden list of events ([{"event"?, "data"}]) as the SSE it stands for.
golden_sse() {
    python3 - "$1" <<'PY'
import json, sys
out = []
for e in json.load(open(sys.argv[1])):
    if "event" in e:
        out.append("event: %s\n" % e["event"])
    d = e["data"]
    out.append("data: %s\n\n" % (d if isinstance(d, str) else json.dumps(d, separators=(",", ":"))))
sys.stdout.write("".join(out))
PY
}

split0='\x00\x00'
# Three cuts, at bytes 7, 64 and 256 (little-endian u16 each).
split3='\x00\x03\x07\x00\x40\x00\x00\x01'

# --- Requests: admission (byte 0: max_depth 64), translate_request (flags 0). ---------------
while IFS= read -r f; do
    seed admission "$(basename "$f")" '\x3f' "$f"
    seed translate_request "$(basename "$f")" '\x00' "$f"
done < <(files "$translate"/*_request.json "$translate"/*_request.to_*.json \
    "$root"/benches/load/*.json "${cli_dirs[0]}/request.trimmed.json")
inline_request() { # NAME BODY
    printf '%s' "$2" | seed admission "$1" '\x3f'
    printf '%s' "$2" | seed translate_request "$1" '\x00'
}
inline_request stream-no-options.json '{"model":"gpt-4.1","stream":true,"messages":[{"role":"user","content":"hi"}]}'
inline_request stream-options-null.json '{"model":"gpt-4.1","stream":true,"stream_options":null,"messages":[]}'
inline_request stream-options-empty.json ' { "stream" : true , "stream_options" : { } }'
inline_request stream-usage-false.json '{"stream":true,"stream_options":{"include_usage":false,"include_usage":1},"model":"m"}'
inline_request escaped-keys.json '{"mod\u0065l":"x","stream":true,"stream_options":{"include\u005fusage":false},"backend":"b","session_id":"s"}'
inline_request anthropic-tools.json '{"model":"claude-sonnet-4-6","max_tokens":64,"system":[{"type":"text","text":"s"}],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"f"},"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}]}'

# --- Complete answers: json_usage (split header), translate_response (flags 0). -------------
while IFS= read -r f; do
    seed json_usage "$(basename "$f")" "$split0" "$f"
    seed translate_response "$(basename "$f")" '\x00' "$f"
done < <(files "$translate"/*_response.json "$translate"/*_response.to_*.json)
for d in "${cli_dirs[@]}"; do
    while IFS= read -r f; do
        seed json_usage "cli-$(basename "$f")" "$split0" "$f"
    done < <(files "$d"/run*.json)
done
# Every event payload of the SSE fixtures is a JSON body of the same shapes (chunks, errors).
while IFS= read -r f; do
    i=0
    while IFS= read -r line; do
        i=$((i + 1))
        name="$(basename "$f" .sse).$i.json"
        printf '%s' "$line" | seed json_usage "$name" "$split0"
        printf '%s' "$line" | seed translate_response "$name" '\x00'
    done < <(data_lines "$f")
done < <(files "$translate"/*.sse)
inline_answer() { # NAME BODY
    printf '%s' "$2" | seed json_usage "$1" "$split0"
    printf '%s' "$2" | seed json_usage "gz-$1" '\x01\x00' # flag bit 0: also through gzip
    printf '%s' "$2" | seed translate_response "$1" '\x00'
}
inline_answer openrouter-cost.json '{"id":"gen-1","model":"openai/gpt-4.1","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"cost":0.00012,"prompt_tokens_details":{"cached_tokens":2,"cache_write_tokens":1}}}'
inline_answer responses-api.json '{"id":"resp_1","object":"response","model":"gpt-4.1","output":[],"usage":{"input_tokens":10,"output_tokens":3,"input_tokens_details":{"cached_tokens":0}}}'
inline_answer gemini-array.json '[{"candidates":[{"content":{"parts":[{"text":"a"}],"role":"model"}}],"usageMetadata":{"promptTokenCount":3}},{"candidates":[{"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2,"thoughtsTokenCount":1,"toolUsePromptTokenCount":4},"modelVersion":"gemini-2.5-flash"}]'
inline_answer anthropic-cost.json '{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":2,"cache_creation_input_tokens":3,"cache_read_input_tokens":4,"cache_creation":{"ephemeral_1h_input_tokens":1},"cost_usd":0.5}}'
inline_answer gemini-error-array.json '[{"error":{"code":429,"message":"quota exceeded","status":"RESOURCE_EXHAUSTED"}}]'
inline_answer text-error.json 'upstream connect error or disconnect/reset before headers'

# --- Streams: sse_meter (split header, whole and cut), translate_stream. --------------------
inline_sse() { # NAME, SSE text on stdin
    local tmp
    tmp=$(mktemp)
    cat >"$tmp"
    seed sse_meter "$1" "$split0" "$tmp"
    seed sse_meter "cut-$1" "$split3" "$tmp"
    seed sse_meter "gz-$1" '\x40\x00' "$tmp" # flag bit 6: also through gzip
    seed translate_stream "$1" "$split0" "$tmp"
    seed translate_stream "usage-$1" '\x01\x00' "$tmp"
    rm -f "$tmp"
}
while IFS= read -r f; do
    inline_sse "$(basename "$f")" <"$f"
done < <(files "$translate"/*.sse)
if command -v python3 >/dev/null; then
    while IFS= read -r f; do
        golden_sse "$f" | inline_sse "$(basename "$f" .json).sse"
    done < <(files "$translate"/*_stream.to_*.json "$translate"/*_error.to_*.json)
else
    echo "seeds.sh: python3 not found; stream goldens not converted" >&2
fi
inline_sse openai-usage-only.sse <<'EOF'
: OPENROUTER PROCESSING

data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4.1","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}

data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4.1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","function":{"name":"f","arguments":"{\"a\""}},{"function":{"arguments":":1}"}}]},"finish_reason":null}]}

data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4.1","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}

data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4.1","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":4},"cost":0.0012}}

data: [DONE]

EOF
inline_sse responses-api.sse <<'EOF'
event: response.created
data: {"type":"response.created","response":{"id":"r1","model":"gpt-4.1"}}

event: response.output_text.delta
data: {"type":"response.output_text.delta","delta":"Hi"}

event: response.completed
data: {"type":"response.completed","response":{"id":"r1","model":"gpt-4.1","usage":{"input_tokens":10,"output_tokens":2,"input_tokens_details":{"cached_tokens":0}}}}

EOF
printf '%s' 'event: message_start\r\ndata: {"type":"message_start","message":{"id":"msg_1","model":"claude-sonnet-5","usage":{"input_tokens":25,"cache_creation_input_tokens":3,"cache_read_input_tokens":7,"output_tokens":1,"cache_creation":{"ephemeral_5m_input_tokens":1,"ephemeral_1h_input_tokens":2}}}}\r\n\r\n: keep-alive\r\n\r\nevent: ping\r\ndata: {"type": "ping"}\r\n\r\nevent: content_block_delta\r\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}\r\rdata: y\r\revent: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n' |
    sed 's/\\r/\r/g; s/\\n/\n/g' | inline_sse anthropic-crlf.sse
inline_sse gemini-call.sse <<'EOF'
data: {"candidates":[{"content":{"parts":[{"text":"a"},{"functionCall":{"name":"f","args":{"x":[1e15,-0.5,"\u00e9"]}}}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2,"thoughtsTokenCount":1},"modelVersion":"gemini-2.5-flash","responseId":"resp-1"}

EOF

# --- Claude Code CLI stdout: cli_stream_json (streaming, JSON answer, exit with stderr). -----
for d in "${cli_dirs[@]}"; do
    while IFS= read -r f; do
        name=$(basename "$f")
        seed cli_stream_json "$name" "$split0" "$f"
        seed cli_stream_json "json-$name" '\x01\x00' "$f"
        seed cli_stream_json "stderr-$name" '\x06\x00' "$f"
    done < <(files "$d"/run*.jsonl "$d"/run*.json)
done
printf '%s\n' "You've hit your session limit · resets Apr 23 at 4pm (UTC)" 'Claude AI usage limit reached|1762952400' |
    seed cli_stream_json limit-text.txt '\x06\x00'

# --- Config files: config (no header). --------------------------------------------------------
while IFS= read -r f; do
    seed config "$(basename "$f")" '' "$f"
done < <(files "$root"/conf/*.yaml)
[ -f "$root/benches/load/sidecar.yaml" ] && seed config bench-sidecar.yaml '' "$root/benches/load/sidecar.yaml"
seed config routes-pools.yaml '' <<'EOF'
routes:
  - name: anthropic
    match: { path_prefix: /anthropic/ }
    pool: claude
pools:
  claude:
    provider: anthropic
    timeouts: { connect: 250ms, first_byte: 2s, idle: 1s, total: 10m }
    accounts:
      - { name: team-a, base_url: "https://api.anthropic.com", key_env: HOME }
      - { name: team-b, base_url: "http://127.0.0.1:9999/base/", key_env: HOME, auth: bearer }
EOF

# --- Request paths: path (no header). -------------------------------------------------------
i=0
for p in /anthropic/v1/messages /anthropic//v1///messages/ /a/./b/../c '/a/%2e%2E/b' \
    /anthropic/../openai/v1/chat/completions /openai/v1/../v1/models /openai/v1/../../x \
    '/gemini/v1beta/models/m:streamGenerateContent' '/a/x%20y' '/a%2fb' '/a/..%2e' /.. /; do
    i=$((i + 1))
    printf '%s' "$p" | seed path "$i.txt" ''
done

# --- Inputs that once crashed a target, kept in fuzz/regressions/<target>/ (committed). -------
for d in "$here"/regressions/*/; do
    [ -d "$d" ] || continue
    while IFS= read -r f; do
        seed "$(basename "$d")" "regression-$(basename "$f")" '' "$f"
    done < <(files "$d"*)
done

echo "seeds.sh: $(find "$corpus" -name 'seed-*' | wc -l) seeds under $corpus"
