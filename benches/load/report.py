#!/usr/bin/env python3
"""Turns benches/load/run.sh's raw results into markdown: medians over the rounds, ratios to
nginx and to bare Pingora, the issue's targets, and proof the sidecar did its full work."""

import argparse
import sqlite3
import statistics
import urllib.request
from collections import defaultdict

p = argparse.ArgumentParser()
p.add_argument("results")
p.add_argument("--legs", default="direct nginx bare sidecar")
p.add_argument("--duration")
p.add_argument("--rounds")
p.add_argument("--rate")
p.add_argument("--streams")
p.add_argument("--admin")
p.add_argument("--db")
a = p.parse_args()

raw = defaultdict(list)
with open(a.results) as f:
    for line in f:
        leg, test, key, value = line.split()
        raw[(leg, test, key)].append(float(value))
med = {k: statistics.median(v) for k, v in raw.items()}


def get(leg, test, key):
    return med.get((leg, test, key), float("nan"))


def us(v):
    return f"{v:,.0f} µs" if v >= 100 else f"{v:.1f} µs"


def ratio(v, base):
    return f"{v / base:.2f}x" if base and base == base else "-"


names = {"direct": "direct to the upstream", "nginx": "nginx reverse proxy",
         "bare": "bare Pingora (stock build)", "sidecar": "llm-sidecar, full config",
         "baseline": "llm-sidecar baseline build, same config",
         "shared": "llm-sidecar, same config + shared.redis"}
legs = [(leg, names.get(leg, leg)) for leg in a.legs.split()]
print()
print(f"Anthropic Messages POST (~1 KB JSON), keep-alive; {a.duration} per measurement, "
      f"median of {a.rounds} interleaved rounds.")
print()
print("| leg | req/s @50 conns | vs nginx | vs bare | vs sidecar | p99 @50 | p50 @1 conn | p99 @1 | "
      f"p50 @{a.rate}/s | p99 @{a.rate}/s | OpenAI req/s @50 | SSE req/s @50 |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for leg, name in legs:
    rps = get(leg, "c50", "rps")
    print(f"| {name} | {rps:,.0f} | {ratio(rps, get('nginx', 'c50', 'rps'))} | "
          f"{ratio(rps, get('bare', 'c50', 'rps'))} | {ratio(rps, get('sidecar', 'c50', 'rps'))} | "
          f"{us(get(leg, 'c50', 'p99'))} | "
          f"{us(get(leg, 'c1', 'p50'))} | {us(get(leg, 'c1', 'p99'))} | {us(get(leg, 'rate', 'p50'))} | "
          f"{us(get(leg, 'rate', 'p99'))} | {get(leg, 'openai', 'rps'):,.0f} | {get(leg, 'sse', 'rps'):,.0f} |")

door, through = get("sidecar", "door", "rps"), get("sidecar", "c50", "rps")
print()
print(f"- OpenAI front door -> Anthropic pool (request and answer translated): {door:,.0f} req/s @50, "
      f"{ratio(door, through)} of pass-through ({through:,.0f}); p99 @50 {us(get('sidecar', 'door', 'p99'))}")
shared_rps = get("shared", "c50", "rps")
if shared_rps == shared_rps:
    print(f"- shared.redis on (local redis-server): {shared_rps:,.0f} req/s @50, {ratio(shared_rps, through)} of the "
          f"same config without it; p50 @1 conn {us(get('shared', 'c1', 'p50'))} vs {us(get('sidecar', 'c1', 'p50'))} "
          f"(+{us(get('shared', 'c1', 'p50') - get('sidecar', 'c1', 'p50'))}); Redis per request: "
          f"{get('shared', 'redis', 'scripts_per_req'):.2f} script calls (round trips), "
          f"{get('shared', 'redis', 'cmds_per_req'):.1f} commands in all")
errors = {leg: sum(v for (l, _, k), vs in raw.items() if l == leg and k == "errors" for v in vs)
          for leg, _ in legs}
mib = lambda kib: kib / 1024
idle, loaded = get("sidecar", "idle", "rss_kib"), get("sidecar", "loaded", "rss_kib")
streams_rss = get("sidecar", "streams", "rss_kib")
chunk_direct, chunk_side = get("direct", "chunk", "p50"), get("sidecar", "chunk", "p50")
print()
print(f"- errors (non-2xx or socket) per leg: {errors}")
print(f"- sidecar RSS: idle {mib(idle):.1f} MiB, after the load {mib(loaded):.1f} MiB, with "
      f"{get('sidecar', 'streams', 'open'):.0f} streams open {mib(streams_rss):.1f} MiB "
      f"(bare Pingora idle {mib(get('bare', 'idle', 'rss_kib')):.1f} MiB)")
per_stream = lambda leg: (get(leg, "streams", "rss_kib") - get(leg, "streams_idle", "rss_kib")) / max(1, get(leg, "streams", "open"))
print(f"- with {get('bare', 'streams', 'open'):.0f} streams open through bare Pingora (fresh process, stock build): "
      f"{mib(get('bare', 'streams', 'rss_kib')):.1f} MiB; RSS per open stream: bare Pingora "
      f"{per_stream('bare'):.1f} KiB, llm-sidecar {per_stream('sidecar'):.1f} KiB")
print(f"- SSE, upstream event to client read, per chunk: direct p50 {us(chunk_direct)} / p99 "
      f"{us(get('direct', 'chunk', 'p99'))}; through the sidecar p50 {us(chunk_side)} / p99 "
      f"{us(get('sidecar', 'chunk', 'p99'))} (added p50 {us(chunk_side - chunk_direct)})")

# What the sidecar did meanwhile, from its own metrics and request log.
try:
    text = urllib.request.urlopen(f"{a.admin}/metrics", timeout=5).read().decode()
    total = lambda name: sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
                             if l.startswith(name + "{") or l.startswith(name + " "))
    requests, tokens = total("llm_sidecar_requests_total"), total("llm_sidecar_tokens_total")
    cost = total("llm_sidecar_cost_usd_total")
    overhead = total("llm_sidecar_overhead_seconds_sum") / max(1, total("llm_sidecar_overhead_seconds_count"))
    rows = sqlite3.connect(a.db).execute("select count(*) from requests").fetchone()[0] if a.db else 0
    print(f"- the sidecar counted {requests:,.0f} requests, metered {tokens:,.0f} tokens "
          f"(${cost:,.2f}), logged {rows:,} rows in SQLite; mean overhead_seconds "
          f"{overhead * 1e6:.1f} µs")
except OSError as e:
    print(f"- (could not read the sidecar's metrics: {e})")

bare, nginx = get("bare", "c50", "rps"), get("nginx", "c50", "rps")
side = get("sidecar", "c50", "rps")
targets = [
    ("throughput >= 1.0x bare Pingora", f"{side / bare:.2f}x", side >= bare),
    ("throughput >= 0.45x nginx", f"{side / nginx:.2f}x", side >= 0.45 * nginx),
    ("p50 @1 conn within 5 µs of bare", us(get("sidecar", "c1", "p50") - get("bare", "c1", "p50")),
     get("sidecar", "c1", "p50") <= get("bare", "c1", "p50") + 5),
    ("p99 @50 conns <= nginx's", f"{us(get('sidecar', 'c50', 'p99'))} vs {us(get('nginx', 'c50', 'p99'))}",
     get("sidecar", "c50", "p99") <= get("nginx", "c50", "p99")),
    ("idle RSS <= 16 MB", f"{mib(idle):.1f} MiB", idle * 1024 <= 16e6),
    (f"RSS <= 64 MB with {a.streams} streams", f"{mib(streams_rss):.1f} MiB", streams_rss * 1024 <= 64e6),
    ("shared.redis req/s >= 0.8x local", ratio(shared_rps, through), shared_rps >= 0.8 * through),
    ("shared.redis p50 @1 conn within 0.1 ms of local",
     us(get("shared", "c1", "p50") - get("sidecar", "c1", "p50")),
     get("shared", "c1", "p50") <= get("sidecar", "c1", "p50") + 100),
    ("SSE per-chunk delay < 1 ms", f"p99 {us(get('sidecar', 'chunk', 'p99'))}", get("sidecar", "chunk", "p99") < 1000),
]
print()
print("| target | measured | met |")
print("|---|---:|:---:|")
for name, value, ok in targets:
    print(f"| {name} | {value} | {'yes' if ok else '**no**'} |")
