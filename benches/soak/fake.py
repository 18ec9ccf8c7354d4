#!/usr/bin/env python3
"""The soak's fake upstream: Anthropic, OpenAI, OpenRouter and Gemini on one port (stdlib only).

    python3 fake.py PORT

HTTP/1.1 keep-alive (ThreadingHTTPServer); JSON answers with content-length, SSE answers chunked,
both with the provider's usage fields. Routes:

    POST /v1/messages                                   Anthropic Messages (JSON or SSE)
    POST /v1/chat/completions, /api/v1/chat/completions OpenAI / OpenRouter Chat Completions
    POST /v1beta/models/M:generateContent               Gemini (JSON)
    POST /v1beta/models/M:streamGenerateContent?alt=sse Gemini (SSE)
    GET  /_soak/stats                                   what the fake saw and did (JSON)

The account is told by its key (the sidecar injects SOAK_KEY_A = sk-soak-a or SOAK_KEY_B =
sk-soak-b); a request without either gets 401 (key injection broken).

Faults: the header `x-soak-fault: 500|429|reset|cut|slow` (the sidecar forwards every client
header upstream, through pass-through routes and front doors alike) is honoured on the FIRST
attempt of a request id only (x-request-id, which the sidecar forwards), so the sidecar's retry
on the other account is answered normally:
    500    provider-shaped 500                         (a failure, retried elsewhere)
    429    provider-shaped 429 with retry-after: 1     (account cools 1 s, retried elsewhere);
           on account a only: if both accounts of a pool could cool at once, unmarked requests
           would get the sidecar's own 429 rate_limited, an error the driver could not tell
           from a real one
    reset  connection reset (RST) before the response head
    cut    JSON: half the body, then the connection closes; SSE: two content events, then closes
           (content reached the client: no retry, the client sees it broken)
    slow   the head after SLOW_SECONDS (1.5 s), past the soak config's first_byte of 1 s
Idle keep-alive connections are closed after 5 s (as real upstreams do), so the sidecar's pool
of idle upstream connections follows the recent load rather than its all-time peak.
"""

import collections
import json
import os
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SSE_DELAY = float(os.environ.get("SOAK_SSE_DELAY", "0.005"))  # between SSE events
SLOW_SECONDS = 1.5
IDLE_CLOSE = 5.0

LOCK = threading.Lock()
STATS = collections.Counter()
SEEN = collections.OrderedDict()  # request id -> attempts (bounded)
SEEN_MAX = 200_000


def first_attempt(rid):
    """Count an attempt of `rid`; True on its first."""
    with LOCK:
        n = SEEN.get(rid, 0)
        SEEN[rid] = n + 1
        if n == 0 and len(SEEN) > SEEN_MAX:
            SEEN.popitem(last=False)
        if n > 0:
            STATS["retried_attempts"] += 1
        return n == 0


def count(key, n=1):
    with LOCK:
        STATS[key] += n


def sse(name, data):
    head = f"event: {name}\n" if name else ""
    return (head + "data: " + (data if isinstance(data, str) else json.dumps(data)) + "\n\n").encode()


WORDS = ["soak", " test", " answer", " from", " the", " fake", " upstream"]


# --- Anthropic ---
def anthropic_json(model):
    return {
        "id": "msg_soak", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": "".join(WORDS)}],
        "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 25, "output_tokens": 7, "cache_read_input_tokens": 100,
                  "cache_creation_input_tokens": 0},
    }


def anthropic_sse(model):
    yield sse("message_start", {"type": "message_start", "message": {
        "id": "msg_soak", "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 25, "output_tokens": 1, "cache_read_input_tokens": 100,
                  "cache_creation_input_tokens": 0}}})
    yield sse("content_block_start", {"type": "content_block_start", "index": 0,
                                      "content_block": {"type": "text", "text": ""}})
    yield sse("ping", {"type": "ping"})
    for w in WORDS:
        yield sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                          "delta": {"type": "text_delta", "text": w}})
    yield sse("content_block_stop", {"type": "content_block_stop", "index": 0})
    yield sse("message_delta", {"type": "message_delta",
                                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                "usage": {"output_tokens": 7}})
    yield sse("message_stop", {"type": "message_stop"})


# --- OpenAI / OpenRouter ---
def openai_usage(openrouter):
    u = {"prompt_tokens": 25, "completion_tokens": 7, "total_tokens": 32,
         "prompt_tokens_details": {"cached_tokens": 10}}
    if openrouter:
        u["cost"] = 0.0001
    return u


def openai_json(model, openrouter):
    return {
        "id": "chatcmpl-soak", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(WORDS)},
                     "finish_reason": "stop"}],
        "usage": openai_usage(openrouter),
    }


def openai_sse(model, openrouter, include_usage):
    base = {"id": "chatcmpl-soak", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model}
    yield sse(None, dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""},
                                         "finish_reason": None}]))
    for w in WORDS:
        yield sse(None, dict(base, choices=[{"index": 0, "delta": {"content": w}, "finish_reason": None}]))
    yield sse(None, dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    if include_usage:
        yield sse(None, dict(base, choices=[], usage=openai_usage(openrouter)))
    yield sse(None, "[DONE]")


# --- Gemini ---
def gemini_usage(out):
    return {"promptTokenCount": 25, "candidatesTokenCount": out, "totalTokenCount": 25 + out,
            "cachedContentTokenCount": 10}


def gemini_json(model):
    return {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "".join(WORDS)}]},
                        "finishReason": "STOP", "index": 0}],
        "usageMetadata": gemini_usage(7), "modelVersion": model,
    }


def gemini_sse(model):
    for i, w in enumerate(WORDS):
        cand = {"content": {"role": "model", "parts": [{"text": w}]}, "index": 0}
        if i == len(WORDS) - 1:
            cand["finishReason"] = "STOP"
        yield sse(None, {"candidates": [cand], "usageMetadata": gemini_usage(i + 1), "modelVersion": model})


def error_body(dialect, status):
    if dialect == "anthropic":
        kind = "rate_limit_error" if status == 429 else "api_error"
        return {"type": "error", "error": {"type": kind, "message": "soak fault"}}
    if dialect == "gemini":
        st = "RESOURCE_EXHAUSTED" if status == 429 else "INTERNAL"
        return {"error": {"code": status, "status": st, "message": "soak fault"}}
    kind = "rate_limit_exceeded" if status == 429 else "server_error"
    return {"error": {"message": "soak fault", "type": kind, "code": None}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_CLOSE  # an idle keep-alive connection is closed after this

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/_soak/stats"):
            with LOCK:
                body = json.dumps(dict(STATS)).encode()
            return self.send_bytes(200, body)
        self.send_bytes(404, b'{"error":"not found"}')

    def send_bytes(self, status, body, headers=()):
        self.send_response(status)
        self.send_header("content-type", "application/json")
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            req = json.loads(raw or b"{}")
        except ValueError:
            count("bad_json")
            return self.send_bytes(400, b'{"error":{"message":"bad json"}}')
        path = self.path
        if path == "/v1/messages":
            dialect, stream, model = "anthropic", bool(req.get("stream")), req.get("model", "claude")
        elif path in ("/v1/chat/completions", "/api/v1/chat/completions"):
            dialect = "openrouter" if path.startswith("/api/") else "openai"
            stream, model = bool(req.get("stream")), req.get("model", "gpt")
        elif path.startswith("/v1beta/models/"):
            dialect = "gemini"
            model, _, method = path[len("/v1beta/models/"):].partition(":")
            stream = method.startswith("streamGenerateContent")
        else:
            count("unknown_path")
            return self.send_bytes(404, b'{"error":{"message":"no such path"}}')
        key = " ".join(self.headers.get(h, "") for h in ("x-api-key", "authorization", "x-goog-api-key"))
        account = "a" if "sk-soak-a" in key else "b" if "sk-soak-b" in key else None
        if account is None:
            count("no_key")
            return self.send_bytes(401, json.dumps(error_body(dialect, 401)).encode())
        count(f"requests_{dialect}_{'sse' if stream else 'json'}")
        count(f"account_{account}")
        fault = self.headers.get("x-soak-fault")
        rid = self.headers.get("x-request-id") or ""
        if fault:
            count("marked_attempts")
            if not first_attempt(rid) or (fault == "429" and account != "a"):
                fault = None
        if fault:
            count(f"fired_{fault}")
        if fault == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        if fault in ("500", "429"):
            status = int(fault)
            hdrs = [("retry-after", "1")] if status == 429 else []
            return self.send_bytes(status, json.dumps(error_body(dialect, status)).encode(), hdrs)
        if fault == "slow":
            time.sleep(SLOW_SECONDS)
        if stream:
            if dialect == "anthropic":
                events = anthropic_sse(model)
            elif dialect == "gemini":
                events = gemini_sse(model)
            else:
                inc = bool((req.get("stream_options") or {}).get("include_usage"))
                events = openai_sse(model, dialect == "openrouter", inc)
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            content = 0
            for ev in events:
                if fault == "cut" and content >= 2:
                    self.close_connection = True
                    return
                if b"delta" in ev or b'"parts"' in ev:
                    content += 1
                self.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev))
                if SSE_DELAY:
                    time.sleep(SSE_DELAY)
            self.wfile.write(b"0\r\n\r\n")
            return
        if dialect == "anthropic":
            body = anthropic_json(model)
        elif dialect == "gemini":
            body = gemini_json(model)
        else:
            body = openai_json(model, dialect == "openrouter")
        data = json.dumps(body).encode()
        if fault == "cut":
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        self.send_bytes(200, data)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def handle_error(self, request, client_address):
        # A peer that left (the sidecar gave up on a slow head, a reset): expected here.
        count("handler_errors")


def main():
    port = int(sys.argv[1])
    srv = Server(("127.0.0.1", port), Handler)
    srv.serve_forever()


if __name__ == "__main__":
    main()
