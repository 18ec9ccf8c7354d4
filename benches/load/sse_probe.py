#!/usr/bin/env python3
"""SSE timing for benches/load/run.sh (standard library only).

  sse_probe.py serve PORT
      An Anthropic-style streaming upstream: every POST gets message_start, then one
      content_block_delta every `interval` seconds (query: ?events=N&interval=S) carrying the monotonic send time in its text, then
      message_delta (usage) and message_stop.
  sse_probe.py delay URL --events N --interval S
      One stream through URL; prints the per-event delay from the upstream's send to our read
      (CLOCK_MONOTONIC is shared by every process on the machine): p50, p99, max in microseconds.
  sse_probe.py hold URL --streams N --pidfile F
      Opens N streams at once, waits until each has its first content event, prints the RSS of
      the process in F while all are open, then closes them.
"""

import argparse
import asyncio
import json
import re
import sys
import time
from urllib.parse import urlsplit

STAMP = re.compile(rb"t=(\d+) ")
BODY = json.dumps({
    "model": "claude-sonnet-4-5", "max_tokens": 256, "stream": True,
    "messages": [{"role": "user", "content": "Count slowly."}],
}).encode()


def event(name, data):
    payload = f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(payload), payload)


async def serve_one(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            # The client sets the pace in the query: ?events=N&interval=SECONDS
            q = dict(re.findall(rb"[?&](\w+)=([\d.]+)", head.split(b" ", 2)[1]))
            events, interval = int(q.get(b"events", 200)), float(q.get(b"interval", 0.01))
            m = re.search(rb"(?i)content-length:\s*(\d+)", head)
            if m:
                await reader.readexactly(int(m.group(1)))
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                         b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n")
            writer.write(event("message_start", {"type": "message_start", "message": {
                "id": "msg_probe", "type": "message", "role": "assistant",
                "model": "claude-sonnet-4-5-20250929", "content": [], "stop_reason": None,
                "usage": {"input_tokens": 12, "output_tokens": 1}}}))
            writer.write(event("content_block_start", {
                "type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}))
            await writer.drain()
            for _ in range(events):
                await asyncio.sleep(interval)
                writer.write(event("content_block_delta", {
                    "type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": f"t={time.monotonic_ns()} "}}))
                await writer.drain()
            writer.write(event("content_block_stop", {"type": "content_block_stop", "index": 0}))
            writer.write(event("message_delta", {
                "type": "message_delta", "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": events}}))
            writer.write(event("message_stop", {"type": "message_stop"}))
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def open_stream(url):
    u = urlsplit(url)
    reader, writer = await asyncio.open_connection(u.hostname, u.port, limit=1 << 20)
    writer.write(f"POST {u.path}?{u.query} HTTP/1.1\r\nhost: {u.netloc}\r\ncontent-type: application/json\r\n"
                 f"x-api-key: sk-ant-client-placeholder\r\nanthropic-version: 2023-06-01\r\n"
                 f"content-length: {len(BODY)}\r\n\r\n".encode() + BODY)
    await writer.drain()
    return reader, writer


async def delay(url, events, interval):
    reader, writer = await open_stream(f"{url}?events={events}&interval={interval}")
    delays, buf = [], b""
    while len(delays) < events:
        chunk = await reader.read(65536)
        now = time.monotonic_ns()
        if not chunk:
            break
        buf += chunk
        end = 0
        for m in STAMP.finditer(buf):
            delays.append((now - int(m.group(1))) / 1000)
            end = m.end()
        buf = buf[end:]
    writer.close()
    if len(delays) < events:
        sys.exit(f"stream ended after {len(delays)} of {events} events")
    delays.sort()
    pick = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))]
    print(f"RESULT p50={pick(0.5):.1f} p99={pick(0.99):.1f} max={delays[-1]:.1f} n={len(delays)}")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def hold(url, streams, pidfile):
    async def one():
        reader, writer = await open_stream(f"{url}?events=100000&interval=0.5")
        buf = b""
        while b"content_block_delta" not in buf:
            chunk = await reader.read(65536)
            if not chunk:
                raise RuntimeError("stream closed before its first event")
            buf += chunk
        return writer
    # Open in waves so the listener's accept queue is not the thing measured.
    writers = []
    for i in range(0, streams, 100):
        writers += await asyncio.gather(*(one() for _ in range(min(100, streams - i))))
    with open(pidfile) as f:
        pid = int(f.read().strip())
    print(f"RESULT open={len(writers)} rss_kib={rss_kib(pid)}")
    for w in writers:
        w.close()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("port", type=int)
    d = sub.add_parser("delay")
    d.add_argument("url")
    d.add_argument("--events", type=int, default=200)
    d.add_argument("--interval", type=float, default=0.01)
    h = sub.add_parser("hold")
    h.add_argument("url")
    h.add_argument("--streams", type=int, default=1000)
    h.add_argument("--pidfile", required=True)
    a = p.parse_args()
    if a.cmd == "serve":
        async def run():
            server = await asyncio.start_server(
                serve_one, "127.0.0.1", a.port, backlog=4096)
            async with server:
                await server.serve_forever()
        asyncio.run(run())
    elif a.cmd == "delay":
        asyncio.run(delay(a.url, a.events, a.interval))
    else:
        asyncio.run(hold(a.url, a.streams, a.pidfile))


if __name__ == "__main__":
    main()
