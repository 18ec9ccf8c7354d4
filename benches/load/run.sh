#!/usr/bin/env bash
# The load benchmark, in one run: an nginx upstream answering Anthropic and OpenAI JSON and a
# fast SSE stream; four legs measured interleaved round after round: direct to the upstream,
# nginx as reverse proxy, bare Pingora (examples/bare_proxy.rs, stock build) and llm-sidecar
# with a realistic config (benches/load/sidecar.yaml: allocation, metering, metrics, SQLite log),
# plus its OpenAI front door translating to the Anthropic pool, and the same config with
# shared.redis on (leg "shared", a local redis-server on the load core).
# The proxy under test runs alone on core $PROXY_CPU; wrk/oha and the upstreams on $LOAD_CPU.
# Prints a markdown table (medians over the rounds) with ratios to nginx and to bare Pingora.
#
#   bash benches/load/run.sh                     # about 12 minutes after the builds
#   DURATION=3s ROUNDS=1 bash benches/load/run.sh   # a quick look
#   ONLY="sidecar shared" bash benches/load/run.sh    # only those legs
#   BASELINE=/path/to/llm-sidecar bash benches/load/run.sh   # plus another build of the sidecar
#                                   (same config), e.g. an earlier commit's, as leg "baseline"
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
HERE=$ROOT/benches/load
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-5000}          # requests/s for the fixed-rate leg (50 connections)
STREAMS=${STREAMS:-1000}    # concurrent slow streams for the RSS reading
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
TOOLS=$ROOT/target/load-tools
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

# --- tools: nginx and wrk from Debian, oha from crates.io ---
need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v cmake >/dev/null || need+=(cmake)
command -v redis-server >/dev/null || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -x "$TOOLS/bin/oha" ]; then
  echo "installing oha (fixed-rate load) into $TOOLS"
  cargo install -q oha --version 1.16.0 --locked --root "$TOOLS"
fi
OHA=$TOOLS/bin/oha

# --- builds: the sidecar with our release profile; bare Pingora with cargo's stock one ---
echo "building (release)"
cargo build -q --release --bin llm-sidecar
cargo build -q --profile stock --example bare_proxy
SIDECAR=$ROOT/target/release/llm-sidecar
BARE=$ROOT/target/stock/examples/bare_proxy

WORK=$(mktemp -d /tmp/llm-sidecar-load.XXXXXX)
PIDS=()
cleanup() {
  # SIGINT: fast shutdown for all of them (on SIGTERM bare Pingora would wait out its 300 s grace).
  for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on $1" >&2; exit 1
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

UP=$(port); NGX=$(port); BAREP=$(port); SC=$(port); ADMIN=$(port); PROBE=$(port); BARES=$(port)
BL=$(port); BLADMIN=$(port); SH=$(port); SHADMIN=$(port); RP=$(port)

# --- the nginx upstream (core LOAD_CPU) and nginx as reverse proxy (core PROXY_CPU) ---
user_line=""
[ "$(id -u)" = 0 ] && user_line="user root;"
python3 "$HERE/responses.py" "$WORK"
common="$user_line
worker_processes 1;
daemon off;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }"
cat > "$WORK/upstream.conf" <<EOF
$common
pid $WORK/upstream.pid;
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$UP backlog=4096;
    location = /v1/messages { default_type application/json; return 200 '$(cat "$WORK/anthropic.json")'; }
    location = /v1/chat/completions { default_type application/json; return 200 '$(cat "$WORK/openai.json")'; }
    location = /sse/v1/messages { default_type text/event-stream; return 200 '$(cat "$WORK/anthropic.sse")'; }
  }
}
EOF
cat > "$WORK/proxy.conf" <<EOF
$common
pid $WORK/proxy.pid;
http {
  access_log off;
  keepalive_requests 1000000;
  upstream up { server 127.0.0.1:$UP; keepalive 128; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$NGX backlog=4096;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
taskset -c "$LOAD_CPU" "$NGINX" -p "$WORK" -c "$WORK/upstream.conf" & PIDS+=($!)
taskset -c "$PROXY_CPU" "$NGINX" -p "$WORK" -c "$WORK/proxy.conf" & PIDS+=($!)
taskset -c "$LOAD_CPU" python3 "$HERE/sse_probe.py" serve "$PROBE" & PIDS+=($!)

# --- bare Pingora and the sidecar (core PROXY_CPU) ---
taskset -c "$PROXY_CPU" "$BARE" "127.0.0.1:$BAREP" "127.0.0.1:$UP" 1 >"$WORK/bare.log" 2>&1 & PIDS+=($!)
BARE_PID=$!
# A second bare Pingora in front of the slow SSE upstream, for the open-streams reading.
taskset -c "$PROXY_CPU" "$BARE" "127.0.0.1:$BARES" "127.0.0.1:$PROBE" 1 >"$WORK/bare-sse.log" 2>&1 & PIDS+=($!)
echo $! > "$WORK/bare-sse.pid"
sed -e "s#@PORT@#$SC#; s#@ADMIN@#$ADMIN#; s#@JSON@#$UP#g; s#@SSE@#$PROBE#g; s#@DIR@#$WORK#" \
  "$HERE/sidecar.yaml" > "$WORK/sidecar.yaml"
BENCH_KEY_A=sk-bench-a BENCH_KEY_B=sk-bench-b \
  taskset -c "$PROXY_CPU" "$SIDECAR" run --config "$WORK/sidecar.yaml" >"$WORK/sidecar.log" 2>&1 & PIDS+=($!)
SC_PID=$!
echo "$SC_PID" > "$WORK/sidecar.pid"
# The same sidecar config plus shared.redis, against a local redis-server on the load core.
taskset -c "$LOAD_CPU" redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$WORK" >"$WORK/redis.log" 2>&1 & PIDS+=($!)
mkdir -p "$WORK/shared"
sed -e "s#@PORT@#$SH#; s#@ADMIN@#$SHADMIN#; s#@JSON@#$UP#g; s#@SSE@#$PROBE#g; s#@DIR@#$WORK/shared#" \
  "$HERE/sidecar.yaml" > "$WORK/shared.yaml"
printf 'shared:\n  redis: { url: "redis://127.0.0.1:%s/0", prefix: bench, timeout: 50ms }\n' "$RP" >> "$WORK/shared.yaml"
wait_port "$RP"
BENCH_KEY_A=sk-bench-a BENCH_KEY_B=sk-bench-b \
  taskset -c "$PROXY_CPU" "$SIDECAR" run --config "$WORK/shared.yaml" >"$WORK/shared.log" 2>&1 & PIDS+=($!)
for p in $UP $NGX $BAREP $SC $PROBE $BARES $SH; do wait_port "$p"; done
LEGS=(direct nginx bare sidecar shared)
# ONLY="sidecar shared": just those legs (a quicker look; ratios to absent legs read "-").
if [ -n "${ONLY:-}" ]; then read -ra LEGS <<< "$ONLY"; fi
if [ -n "${BASELINE:-}" ]; then
  # Another build of the sidecar, same config (its own ports and request log), measured alike.
  mkdir -p "$WORK/baseline"
  # (without the front door, which an older build may not know)
  sed -e "s#@PORT@#$BL#; s#@ADMIN@#$BLADMIN#; s#@JSON@#$UP#g; s#@SSE@#$PROBE#g; s#@DIR@#$WORK/baseline#" \
    -e '/api: openai/d; /^models:/d; /name: bench, targets/d' "$HERE/sidecar.yaml" > "$WORK/baseline.yaml"
  BENCH_KEY_A=sk-bench-a BENCH_KEY_B=sk-bench-b \
    taskset -c "$PROXY_CPU" "$BASELINE" run --config "$WORK/baseline.yaml" >"$WORK/baseline.log" 2>&1 & PIDS+=($!)
  wait_port "$BL"
  LEGS+=(baseline)
fi
sleep 2
RESULTS=$WORK/results.txt
echo "sidecar idle rss_kib $(rss_kib "$SC_PID")" >> "$RESULTS"
echo "bare idle rss_kib $(rss_kib "$BARE_PID")" >> "$RESULTS"

declare -A BASE=([direct]="http://127.0.0.1:$UP" [nginx]="http://127.0.0.1:$NGX"
                 [bare]="http://127.0.0.1:$BAREP" [sidecar]="http://127.0.0.1:$SC" [baseline]="http://127.0.0.1:$BL"
                 [shared]="http://127.0.0.1:$SH")
# scenario -> path on a plain proxy, path on the sidecar, body file
declare -A PLAIN=([anthropic]=/v1/messages [openai]=/v1/chat/completions [sse]=/sse/v1/messages)
declare -A SIDE=([anthropic]=/anthropic/v1/messages [openai]=/openai/v1/chat/completions [sse]=/stream/v1/messages
                 [door]=/door/chat/completions)
declare -A BODY=([anthropic]=anthropic.json [openai]=openai.json [sse]=anthropic-stream.json [door]=door.json)
url() { if [ "$1" = sidecar ] || [ "$1" = baseline ] || [ "$1" = shared ]; then echo "${BASE[$1]}${SIDE[$2]}"; else echo "${BASE[$1]}${PLAIN[$2]}"; fi; }

wrk_run() { # leg scenario connections -> "rps=.. p50=.. p99=.. errors=.."
  BENCH_BODY="$HERE/${BODY[$2]}" taskset -c "$LOAD_CPU" wrk -t1 -c"$3" -d"$4" -s "$HERE/request.lua" "$(url "$1" "$2")" |
    sed -n 's/^RESULT //p'
}
oha_run() { # leg -> "p50=.. p99=.. errors=.." at $RATE req/s over 50 connections
  taskset -c "$LOAD_CPU" "$OHA" -z "$DURATION" -c 50 -q "$RATE" --latency-correction --no-tui --output-format json -m POST \
    -H "content-type: application/json" -H "x-api-key: sk-ant-client-placeholder" \
    -H "anthropic-version: 2023-06-01" -D "$HERE/anthropic.json" "$(url "$1" anthropic)" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); p=d["latencyPercentiles"]; s=d["statusCodeDistribution"]
print("p50=%.1f p99=%.1f errors=%d" % (p["p50"]*1e6, p["p99"]*1e6, sum(v for k,v in s.items() if k!="200") + sum(d.get("errorDistribution",{}).values())))'
}
record() { # leg test "k=v ..." -> results lines
  for kv in $3; do echo "$1 $2 ${kv%%=*} ${kv#*=}" >> "$RESULTS"; done
}

# Redis commands per request of the shared leg: the store's own counters over the whole run.
redis_calls() { # -> "all evalsha": every command run (script-internal ones included), scripts run
  redis-cli -p "$RP" info commandstats | tr -d '\r' |
    awk -F'[:=,]' '/^cmdstat_/ {all += $3; if ($1 == "cmdstat_evalsha") ev += $3} END {print all+0, ev+0}'
}
requests_of() { # admin port -> requests the sidecar counted
  curl -s "http://127.0.0.1:$1/metrics" | awk '/^llm_sidecar_requests_total\{/ {n += $2} END {print n+0}'
}
read -r CALLS0 EVAL0 <<< "$(redis_calls)"
REQ0=$(requests_of "$SHADMIN")
echo "warming up"
for leg in "${LEGS[@]}"; do
  for sc in anthropic openai sse; do wrk_run "$leg" "$sc" 50 2s >/dev/null; done
done
for round in $(seq "$ROUNDS"); do
  echo "round $round/$ROUNDS"
  for leg in "${LEGS[@]}"; do
    record "$leg" c50 "$(wrk_run "$leg" anthropic 50 "$DURATION")"
    record "$leg" c1 "$(wrk_run "$leg" anthropic 1 "$DURATION")"
    record "$leg" rate "$(oha_run "$leg")"
    record "$leg" openai "$(wrk_run "$leg" openai 50 "$DURATION")"
    record "$leg" sse "$(wrk_run "$leg" sse 50 "$DURATION")"
  done
  # The OpenAI front door in front of the Anthropic pool: translated both ways, beside pass-through.
  record sidecar door "$(wrk_run sidecar door 50 "$DURATION")"
done
echo "sidecar loaded rss_kib $(rss_kib "$SC_PID")" >> "$RESULTS"
read -r CALLS1 EVAL1 <<< "$(redis_calls)"
REQ1=$(requests_of "$SHADMIN")
python3 -c "r=max(1,$REQ1-$REQ0); print('shared redis cmds_per_req', ($CALLS1-$CALLS0)/r); print('shared redis scripts_per_req', ($EVAL1-$EVAL0)/r)" >> "$RESULTS"

echo "SSE timing and $STREAMS open streams"
for round in $(seq "$ROUNDS"); do
  for leg in direct sidecar; do
    u="http://127.0.0.1:$PROBE/v1/messages"
    [ "$leg" = sidecar ] && u="http://127.0.0.1:$SC/timed/v1/messages"
    record "$leg" chunk "$(taskset -c "$LOAD_CPU" python3 "$HERE/sse_probe.py" delay "$u" --events 200 --interval 0.01 |
      sed -n 's/^RESULT //p')"
  done
done
echo "bare streams_idle rss_kib $(rss_kib "$(cat "$WORK/bare-sse.pid")")" >> "$RESULTS"
record bare streams "$(taskset -c "$LOAD_CPU" python3 "$HERE/sse_probe.py" hold \
  "http://127.0.0.1:$BARES/v1/messages" --streams "$STREAMS" --pidfile "$WORK/bare-sse.pid" | sed -n 's/^RESULT //p')"
echo "sidecar streams_idle rss_kib $(rss_kib "$SC_PID")" >> "$RESULTS"
record sidecar streams "$(taskset -c "$LOAD_CPU" python3 "$HERE/sse_probe.py" hold \
  "http://127.0.0.1:$SC/timed/v1/messages" --streams "$STREAMS" --pidfile "$WORK/sidecar.pid" | sed -n 's/^RESULT //p')"

python3 "$HERE/report.py" "$RESULTS" --legs "${LEGS[*]}" --duration "$DURATION" --rounds "$ROUNDS" --rate "$RATE" \
  --streams "$STREAMS" --admin "http://127.0.0.1:$ADMIN" --db "$WORK/requests.db"
