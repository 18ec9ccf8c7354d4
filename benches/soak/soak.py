#!/usr/bin/env python3
"""The soak's driver (stdlib only), run by benches/soak.sh.

    soak.py render TEMPLATE OUT STAMP           # the config with reload stamp STAMP (atomic replace)
    soak.py run --port P --admin A --pid PID --template T --config C --db DB --fake URL [...]

`run` sends mixed JSON and SSE traffic at --rate requests/s for --seconds through every route
(four pass-through providers, the OpenAI door to the Anthropic and Gemini pools, the Anthropic
door to the OpenAI pool), marks --fault-rate of them with `x-soak-fault` (the fake upstream's
fault), reloads the config every --reload-every seconds (alternately a rewritten file and
SIGHUP), restarts Redis at half time (--redis-port), samples the sidecar's RSS and open fds
every --sample-every seconds, then prints a markdown report and exits 1 on any failure.
"""

import argparse
import http.client
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request

FAULTS = ["500", "429", "reset", "cut", "slow"]
SESSIONS = [f"soak-session-{i}" for i in range(32)]


# --- config rendering (every reload changes a comment and the retry backoff) ---
def render(template, out, stamp):
    text = open(template).read()
    text = text.replace("@STAMP@", str(stamp)).replace("@BACKOFF@", f"{20 + stamp % 2}ms")
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, out)


# --- what the driver sends ---
def msgs(text):
    return [{"role": "user", "content": text}]


def scenario_request(name, stream, rid):
    """(route label, path, headers, body, client dialect)."""
    text = f"soak request {rid}"
    if name == "anthropic":
        body = {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": msgs(text), "stream": stream}
        return "anthropic", "/anthropic/v1/messages", {"x-api-key": "placeholder", "anthropic-version": "2023-06-01"}, body, "anthropic"
    if name == "openai":
        body = {"model": "gpt-4.1-mini", "messages": msgs(text), "stream": stream}
        return "openai", "/openai/v1/chat/completions", {"authorization": "Bearer placeholder"}, body, "openai"
    if name == "openrouter":
        body = {"model": "anthropic/claude-3.5-sonnet", "messages": msgs(text), "stream": stream}
        return "openrouter", "/openrouter/v1/chat/completions", {"authorization": "Bearer placeholder"}, body, "openai"
    if name == "gemini":
        body = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
        path = "/gemini/v1beta/models/gemini-2.5-flash:" + ("streamGenerateContent?alt=sse" if stream else "generateContent")
        return "gemini", path, {"x-goog-api-key": "placeholder"}, body, "gemini"
    if name in ("door-openai>claude", "door-openai>gemini"):
        model = "soak-claude" if name.endswith("claude") else "soak-gemini"
        body = {"model": model, "messages": msgs(text), "stream": stream}
        if stream and random.random() < 0.5:
            body["stream_options"] = {"include_usage": True}
        return name, "/v1/chat/completions", {"authorization": "Bearer placeholder"}, body, "openai"
    if name == "door-anthropic>gpt":
        body = {"model": "soak-gpt", "max_tokens": 64, "messages": msgs(text), "stream": stream}
        return name, "/any/v1/messages", {"x-api-key": "placeholder", "anthropic-version": "2023-06-01"}, body, "anthropic"
    raise ValueError(name)


SCENARIOS = ["anthropic", "openai", "openrouter", "gemini", "door-openai>claude", "door-openai>gemini", "door-anthropic>gpt"]


def sse_events(body):
    """[(event name, data)] of an SSE body."""
    out = []
    for block in re.split(r"\r?\n\r?\n", body.decode("utf-8", "replace")):
        name, data = "", []
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if name or data:
            out.append((name, "\n".join(data)))
    return out


def validate(dialect, stream, status, ctype, body):
    """None when the answer is a complete success in the client's dialect, else why not."""
    if status != 200:
        return f"status {status}: {body[:200]!r}"
    if not stream:
        try:
            obj = json.loads(body)
        except ValueError:
            return f"JSON answer does not parse ({len(body)} bytes)"
        need = {"anthropic": "content", "openai": "choices", "gemini": "candidates"}[dialect]
        if not isinstance(obj, dict) or need not in obj or "error" in obj:
            return f"JSON answer without {need!r}: {body[:200]!r}"
        return None
    if "text/event-stream" not in ctype:
        return f"stream answered as {ctype!r}"
    events = sse_events(body)
    if not events:
        return "empty stream"
    for name, data in events:
        if name == "error" or data.startswith('{"error"') or '"type":"error"' in data:
            return f"error event in stream: {data[:200]}"
    name, data = events[-1]
    if dialect == "anthropic" and name != "message_stop":
        return f"stream ends with {name or data[:80]!r}, not message_stop"
    if dialect == "openai" and data != "[DONE]":
        return f"stream ends with {data[:80]!r}, not [DONE]"
    if dialect == "gemini" and '"finishReason"' not in data:
        return f"stream's last chunk has no finishReason: {data[:120]!r}"
    return None


class Driver:
    def __init__(self, a):
        self.a = a
        self.lock = threading.Lock()
        self.next_slot = 0
        self.sent = 0
        self.sent_ids = set()
        self.ok = 0
        self.by_scenario = {}
        self.faults_marked = {f: 0 for f in FAULTS}
        self.faults_visible = {f: 0 for f in FAULTS}
        self.errors = []  # non-injected: (t, rid, route, stream, why)
        self.stop = threading.Event()
        self.t0 = None
        self.samples = []  # (t, rss_kib, fds)
        self.reloads = []  # (t, trigger, confirmed)
        self.redis_restarts = []  # (t, reconnected_after_s or None)
        self.latencies = []

    # --- traffic ---
    def worker(self, wid):
        rng = random.Random(wid * 7919 + int(time.time()))
        conn = None
        a = self.a
        while not self.stop.is_set():
            with self.lock:
                i = self.next_slot
                self.next_slot += 1
            due = self.t0 + i / a.rate
            if due >= self.t0 + a.seconds:
                # Keep the connection open until the end mark is sampled, as it was at the
                # first minute's mark.
                self.stop.wait()
                return
            wait = due - time.monotonic()
            if wait > 0 and self.stop.wait(wait):
                return
            scen = rng.choice(SCENARIOS)
            stream = rng.random() < 0.5
            fault = rng.choice(FAULTS) if rng.random() < a.fault_rate else None
            rid = f"soak-{a.run_id}-{i}"
            route, path, headers, body, dialect = scenario_request(scen, stream, rid)
            headers = dict(headers, **{"content-type": "application/json", "x-request-id": rid})
            if fault:
                headers["x-soak-fault"] = fault
            if rng.random() < 0.25:
                headers["x-session-id"] = rng.choice(SESSIONS)
            data = json.dumps(body).encode()
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)
            with self.lock:
                self.sent += 1
                self.sent_ids.add(rid)
                key = (route, "sse" if stream else "json")
                self.by_scenario[key] = self.by_scenario.get(key, 0) + 1
                if fault:
                    self.faults_marked[fault] += 1
            start = time.monotonic()
            why = None
            try:
                conn.request("POST", path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
                why = validate(dialect, stream, resp.status, resp.getheader("content-type") or "", raw)
                if resp.will_close:
                    conn.close()
                    conn = None
            except Exception as e:  # noqa: BLE001 - any failure is the client-visible error we count
                why = f"{type(e).__name__}: {e}"
                conn.close()
                conn = None
            took = time.monotonic() - start
            if fault and conn is not None:
                conn.close()  # a fresh connection after every fault: no state carried over
                conn = None
            with self.lock:
                self.latencies.append(took)
                if why is None:
                    self.ok += 1
                elif fault:
                    self.faults_visible[fault] += 1
                else:
                    self.errors.append((round(time.monotonic() - self.t0, 1), rid, route,
                                        "sse" if stream else "json", why))

    # --- the sidecar's footprint ---
    def sample(self):
        pid = self.a.pid
        rss = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        self.samples.append((round(time.monotonic() - self.t0), rss, fds))

    def sampler(self):
        k = 0
        end = self.t0 + self.a.seconds
        while True:
            due = self.t0 + k * self.a.sample_every
            if due >= end:
                return
            if self.stop.wait(max(0, due - time.monotonic())):
                return
            self.sample()
            k += 1

    # --- admin ---
    def metric(self, name, labels=""):
        """Sum of the admin /metrics series `name` whose labels contain `labels`."""
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{self.a.admin}/metrics", timeout=5).read().decode()
        except OSError:
            return None
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and (line[len(name)] in " {") and labels in line:
                total += float(line.rsplit(" ", 1)[1])
        return total

    def reloads_ok(self):
        return self.metric("llm_sidecar_config_reloads_total", 'result="success"') or 0

    def reloader(self):
        a = self.a
        k = 1
        while True:
            due = self.t0 + k * a.reload_every
            if due >= self.t0 + a.seconds - 2:
                return
            if self.stop.wait(max(0, due - time.monotonic())):
                return
            before = self.reloads_ok()
            if k % 2:
                trigger = "file"
                render(a.template, a.config, k)
            else:
                trigger = "SIGHUP"
                os.kill(a.pid, signal.SIGHUP)
            confirmed = False
            for _ in range(50):
                time.sleep(0.1)
                if self.reloads_ok() > before:
                    confirmed = True
                    break
            self.reloads.append((round(time.monotonic() - self.t0), trigger, confirmed))
            k += 1

    def redis_restarter(self):
        a = self.a
        if self.stop.wait(max(0, self.t0 + a.seconds / 2 - time.monotonic())):
            return
        t = round(time.monotonic() - self.t0)
        pid = int(open(a.redis_pidfile).read().strip())
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z":
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
        time.sleep(1)  # an outage the sidecar notices
        log = open(os.path.join(a.redis_dir, "redis.log"), "a")
        p = subprocess.Popen(["redis-server", "--port", str(a.redis_port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", a.redis_dir],
                             stdout=log, stderr=log)
        with open(a.redis_pidfile, "w") as f:
            f.write(str(p.pid))
        started = time.monotonic()
        back = None
        while time.monotonic() - started < 20 and not self.stop.is_set():
            time.sleep(0.2)
            if self.metric("llm_sidecar_shared_state_up") == 1:
                back = round(time.monotonic() - started, 1)
                break
        self.redis_restarts.append((t, back))

    # --- the request log ---
    def log_rows(self):
        try:
            db = sqlite3.connect(f"file:{self.a.db}?mode=ro", uri=True, timeout=5)
            try:
                return db.execute("SELECT count(*) FROM requests").fetchone()[0]
            finally:
                db.close()
        except sqlite3.Error:
            return None

    def wait_rows(self):
        """Wait for the writer: until the log holds every request, or stops growing for 10 s."""
        last, still = None, time.monotonic()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            n = self.log_rows()
            if n is not None and n >= self.sent:
                return n
            if n != last:
                last, still = n, time.monotonic()
            elif time.monotonic() - still > 10:
                return n
            time.sleep(0.5)
        return last

    def log_detail(self):
        db = sqlite3.connect(f"file:{self.a.db}?mode=ro", uri=True, timeout=5)
        try:
            ids = [r[0] for r in db.execute("SELECT request_id FROM requests")]
            statuses = db.execute("SELECT status, count(*) FROM requests GROUP BY status ORDER BY status").fetchall()
            kinds = db.execute("SELECT coalesce(error_kind, '-'), count(*) FROM requests GROUP BY 1 ORDER BY 2 DESC").fetchall()
        finally:
            db.close()
        logged = set(ids)
        return {
            "missing": sorted(self.sent_ids - logged),
            "unknown": sorted(logged - self.sent_ids),
            "duplicates": len(ids) - len(logged),
            "statuses": statuses,
            "kinds": kinds,
        }

    # --- the run ---
    def run(self):
        a = self.a
        self.t0 = time.monotonic()
        threads = [threading.Thread(target=self.worker, args=(w,), daemon=True) for w in range(a.workers)]
        threads.append(threading.Thread(target=self.sampler, daemon=True))
        threads.append(threading.Thread(target=self.reloader, daemon=True))
        if a.redis_port:
            threads.append(threading.Thread(target=self.redis_restarter, daemon=True))
        for t in threads:
            t.start()
        last_print = 0
        while time.monotonic() < self.t0 + a.seconds:
            time.sleep(0.5)
            el = time.monotonic() - self.t0
            if el - last_print >= 60:
                last_print = el
                with self.lock:
                    print(f"  t={int(el)}s sent={self.sent} ok={self.ok} errors={len(self.errors)}", file=sys.stderr)
        # The end mark: sampled while the traffic still runs, as the first minute's mark was.
        self.sample()
        self.stop.set()
        for t in threads:
            t.join(timeout=40)
        return self.report()

    def report(self):
        a = self.a
        rows = self.wait_rows()
        detail = self.log_detail() if rows is not None else None
        try:
            fake = json.loads(urllib.request.urlopen(a.fake + "/_soak/stats", timeout=5).read())
        except OSError:
            fake = {}
        shared_up = self.metric("llm_sidecar_shared_state_up") if a.redis_port else None
        failures = []

        # Footprint: the first minute's mark (or a quarter of a shorter run) against the end.
        mark = min(60, max(a.sample_every, a.seconds / 4))
        base = next((s for s in self.samples if s[0] >= mark), None)
        end = self.samples[-1]
        if base is None or base is end:
            failures.append(f"too short to compare footprints (no sample at or after {mark:.0f}s before the end)")
        else:
            if end[1] > base[1] * 1.10:
                failures.append(f"RSS grew {100 * (end[1] / base[1] - 1):.1f}% from t={base[0]}s "
                                f"({base[1] / 1024:.1f} MiB) to the end ({end[1] / 1024:.1f} MiB): more than 10%")
            if end[2] > base[2] + a.fd_slack:
                failures.append(f"open fds grew from {base[2]} at t={base[0]}s to {end[2]} at the end "
                                f"(more than the {a.fd_slack} allowed for the upstream keep-alive pool)")
        # Lost requests.
        if rows is None:
            failures.append("the request log could not be read")
        elif rows != self.sent or detail["missing"] or detail["duplicates"]:
            failures.append(f"request log holds {rows} rows for {self.sent} requests sent "
                            f"({len(detail['missing'])} request ids missing, {detail['duplicates']} duplicated, "
                            f"{len(detail['unknown'])} unknown)")
        # Errors nobody asked for.
        if self.errors:
            failures.append(f"{len(self.errors)} non-injected errors")
        # Reloads and Redis did what they were meant to.
        bad = [r for r in self.reloads if not r[2]]
        if bad:
            failures.append(f"{len(bad)} of {len(self.reloads)} reloads were not applied "
                            f"(llm_sidecar_config_reloads_total{{result=\"success\"}} did not move)")
        if a.redis_port:
            if not self.redis_restarts:
                failures.append("Redis was not restarted")
            elif shared_up != 1:
                failures.append("shared state did not come back after the Redis restart (llm_sidecar_shared_state_up != 1)")

        lat = sorted(self.latencies)
        pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else 0  # noqa: E731
        marked = sum(self.faults_marked.values())
        visible = sum(self.faults_visible.values())
        out = []
        p = out.append
        p(f"## Soak: {a.seconds}s at {a.rate:g} req/s ({a.workers} connections), "
          f"faults {100 * a.fault_rate:g}%, reload every {a.reload_every}s, Redis {'on' if a.redis_port else 'off'}")
        p("")
        p("| | |")
        p("|---|---|")
        p(f"| requests sent | {self.sent} ({self.sent / a.seconds:.1f}/s; p50 {pct(0.5):.0f} ms, p99 {pct(0.99):.0f} ms) |")
        p(f"| rows logged | {rows} |")
        p(f"| answered complete | {self.ok} |")
        p(f"| marked for a fault | {marked} (" + ", ".join(f"{f}: {n}" for f, n in self.faults_marked.items()) + ") |")
        p(f"| faults fired upstream | " + ", ".join(f"{f}: {fake.get('fired_' + f, 0)}" for f in FAULTS)
          + f"; retried attempts seen upstream: {fake.get('retried_attempts', 0)} |")
        p(f"| injected errors the client saw | {visible} (" + ", ".join(f"{f}: {n}" for f, n in self.faults_visible.items()) + ") |")
        p(f"| non-injected errors | {len(self.errors)} |")
        p(f"| reloads | {sum(1 for r in self.reloads if r[2])} applied of {len(self.reloads)} ("
          + ", ".join(f"t={t}s {trig}{'' if ok else ' NOT APPLIED'}" for t, trig, ok in self.reloads) + ") |")
        if a.redis_port:
            rr = ", ".join(f"t={t}s, sharing again after {b}s" if b is not None else f"t={t}s, sharing NOT back"
                           for t, b in self.redis_restarts)
            p(f"| Redis restarts | {len(self.redis_restarts)} ({rr}); shared_state_up at the end: {shared_up} |")
        else:
            p("| Redis restarts | 0 (SOAK_REDIS=0) |")
        if detail:
            p(f"| log rows by status | " + ", ".join(f"{s}: {n}" for s, n in detail["statuses"]) + " |")
            p(f"| log rows by error_kind | " + ", ".join(f"{k}: {n}" for k, n in detail["kinds"]) + " |")
        p("")
        p("| route | json | sse |")
        p("|---|---:|---:|")
        for r in SCENARIOS:
            p(f"| {r} | {self.by_scenario.get((r, 'json'), 0)} | {self.by_scenario.get((r, 'sse'), 0)} |")
        p("")
        p("| t (s) | RSS (MiB) | fds |")
        p("|---:|---:|---:|")
        for s in self.samples:
            flag = " (mark)" if s is base else " (end)" if s is end else ""
            p(f"| {s[0]}{flag} | {s[1] / 1024:.1f} | {s[2]} |")
        if self.errors:
            p("")
            p("Non-injected errors (first 20):")
            p("")
            for t, rid, route, kind, why in self.errors[:20]:
                p(f"- t={t}s `{rid}` {route} {kind}: {why}")
        if detail and (detail["missing"] or detail["unknown"]):
            p("")
            p(f"Request ids sent but not logged (first 10): {detail['missing'][:10]}")
            p(f"Logged ids never sent (first 10): {detail['unknown'][:10]}")
        p("")
        if failures:
            p("**FAIL**")
            for f in failures:
                p(f"- {f}")
        else:
            p("**PASS**: RSS within 10% of the first minute's mark, fds within "
              f"{a.fd_slack} of it, every request logged, no error that was not injected.")
        print("\n".join(out))
        return 1 if failures else 0


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "render":
        render(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["run"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--admin", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--template", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--fake", required=True)
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--rate", type=float, default=150)
    ap.add_argument("--workers", type=int, default=32)
    ap.add_argument("--fault-rate", type=float, default=0.05)
    ap.add_argument("--reload-every", type=int, default=30)
    ap.add_argument("--sample-every", type=int, default=10)
    ap.add_argument("--fd-slack", type=int, default=16)
    ap.add_argument("--redis-port", type=int, default=0)
    ap.add_argument("--redis-pidfile")
    ap.add_argument("--redis-dir")
    ap.add_argument("--run-id", default=str(os.getpid()))
    a = ap.parse_args()
    return Driver(a).run()


if __name__ == "__main__":
    sys.exit(main())
