#!/usr/bin/env bash
# The soak, in one run: SOAK_SECONDS (600) of mixed JSON and SSE traffic (about half each) at
# SOAK_RATE (150) requests/s through all four providers' pass-through routes and both front doors
# (OpenAI door -> Anthropic pool and -> Gemini pool, Anthropic door -> OpenAI pool), against a
# Python fake upstream (benches/soak/fake.py, two accounts per pool). SOAK_FAULTS (0.05) of the
# requests carry `x-soak-fault` (500, 429, reset, cut, slow) which the fake honours on the
# request's first attempt. The config is reloaded every 30 s (alternately a rewritten file and
# SIGHUP); with SOAK_REDIS=1 the sidecar shares state through a local redis-server, restarted
# once at half time. The sidecar's RSS and open fds are sampled every 10 s.
# Prints a markdown report and exits 1 (saying why) when:
#   - RSS at the end is more than 10% above RSS at the first minute's mark;
#   - open fds at the end exceed those at the first minute's mark by more than SOAK_FD_SLACK (16:
#     idle upstream keep-alive connections and client connections in flight vary with the load of
#     the moment; a leak at 150 req/s outgrows that within minutes);
#   - the SQLite request log's rows differ from the requests sent (a request lost, or logged twice);
#   - any request NOT marked for a fault got a non-2xx answer, an unparsable JSON body, or a stream
#     that does not end with its dialect's terminal event (message_stop, [DONE], finishReason);
#   - a reload was not applied, or (SOAK_REDIS=1) sharing did not come back after the restart.
# (Runs shorter than 4 minutes compare against the sample at a quarter of the run instead.)
#
#   bash benches/soak.sh                         # 10 minutes, no Redis
#   SOAK_REDIS=1 bash benches/soak.sh            # with shared state, Redis restarted at half time
#   SOAK_SECONDS=45 bash benches/soak.sh         # a quick look
#   SOAK_RATE, SOAK_FAULTS, SOAK_FD_SLACK, SOAK_RELOAD_EVERY (30) override the defaults above
#   SIDECAR=/path/to/llm-sidecar bash benches/soak.sh   # another build (default target/release)
#   KEEP=1 ...                                   # keep the work directory (config, log, db)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
HERE=$ROOT/benches/soak
SOAK_SECONDS=${SOAK_SECONDS:-600}
SOAK_RATE=${SOAK_RATE:-150}
SOAK_FAULTS=${SOAK_FAULTS:-0.05}
SOAK_REDIS=${SOAK_REDIS:-0}
SOAK_FD_SLACK=${SOAK_FD_SLACK:-16}
SOAK_RELOAD_EVERY=${SOAK_RELOAD_EVERY:-30}
if [ -z "${SIDECAR:-}" ]; then
  echo "building (release)"
  cargo build -q --release --bin llm-sidecar
  SIDECAR=$ROOT/target/release/llm-sidecar
fi
[ -x "$SIDECAR" ] || { echo "no sidecar binary at $SIDECAR" >&2; exit 2; }
if [ "$SOAK_REDIS" = 1 ] && ! command -v redis-server >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "installing redis-server"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq redis-server >/dev/null
fi

WORK=$(mktemp -d /tmp/llm-sidecar-soak.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  [ -f "$WORK/redis.pid" ] && kill -TERM "$(cat "$WORK/redis.pid")" 2>/dev/null || true
  sleep 1
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  [ -f "$WORK/redis.pid" ] && kill -KILL "$(cat "$WORK/redis.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on $1" >&2; exit 1
}

UP=$(port); SC=$(port); ADMIN=$(port); RP=$(port)

# --- the fake upstream: all four providers on one port ---
python3 "$HERE/fake.py" "$UP" >"$WORK/fake.log" 2>&1 & PIDS+=($!)

# --- the config: the template with ports and paths; soak.py fills in the reload stamp ---
sed -e "s#@PORT@#$SC#; s#@ADMIN@#$ADMIN#; s#@UP@#$UP#g; s#@DIR@#$WORK#" "$HERE/sidecar.yaml" > "$WORK/sidecar.tmpl"
REDIS_ARGS=()
if [ "$SOAK_REDIS" = 1 ]; then
  redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
  echo $! > "$WORK/redis.pid"
  printf 'shared:\n  redis: { url: "redis://127.0.0.1:%s/0", prefix: soak, timeout: 50ms }\n' "$RP" >> "$WORK/sidecar.tmpl"
  wait_port "$RP"
  REDIS_ARGS=(--redis-port "$RP" --redis-pidfile "$WORK/redis.pid" --redis-dir "$WORK")
fi
python3 "$HERE/soak.py" render "$WORK/sidecar.tmpl" "$WORK/sidecar.yaml" 0
export SOAK_KEY_A=sk-soak-a SOAK_KEY_B=sk-soak-b
"$SIDECAR" check --config "$WORK/sidecar.yaml" >/dev/null
"$SIDECAR" run --config "$WORK/sidecar.yaml" >"$WORK/sidecar.log" 2>&1 & PIDS+=($!)
SC_PID=$!
wait_port "$UP"; wait_port "$SC"; wait_port "$ADMIN"
sleep 1

echo "soak: ${SOAK_SECONDS}s at ${SOAK_RATE} req/s, faults ${SOAK_FAULTS}, redis ${SOAK_REDIS} (sidecar pid $SC_PID, work $WORK)" >&2
rc=0
python3 "$HERE/soak.py" run --port "$SC" --admin "$ADMIN" --pid "$SC_PID" \
  --template "$WORK/sidecar.tmpl" --config "$WORK/sidecar.yaml" --db "$WORK/requests.db" \
  --fake "http://127.0.0.1:$UP" --seconds "$SOAK_SECONDS" --rate "$SOAK_RATE" \
  --fault-rate "$SOAK_FAULTS" --reload-every "$SOAK_RELOAD_EVERY" --fd-slack "$SOAK_FD_SLACK" "${REDIS_ARGS[@]}" || rc=$?
if ! kill -0 "$SC_PID" 2>/dev/null; then
  echo "**FAIL**: the sidecar exited during the soak; its log:" ; tail -n 30 "$WORK/sidecar.log"; rc=1
fi
if [ "$rc" != 0 ]; then
  echo; echo "sidecar warnings and errors (last 15):"
  grep -E '"level":"(WARN|ERROR)"|WARN|ERROR' "$WORK/sidecar.log" | tail -n 15 || true
fi
exit "$rc"
