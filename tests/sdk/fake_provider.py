"""A fake LLM provider answering like the Anthropic, OpenAI (and OpenRouter) and Gemini APIs,
JSON and SSE, recording the credentials and bodies it receives. Used by check_sdks.py."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SEEN = []  # (path, headers dict, parsed body)
LOCK = threading.Lock()

ANTHROPIC_USAGE_START = {"input_tokens": 25, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 7}


def sse(handler, events, delay=0.02):
    handler.send_response(200)
    handler.send_header("content-type", "text/event-stream")
    handler.send_header("transfer-encoding", "chunked")
    handler.end_headers()
    for ev in events:
        data = ev.encode()
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        handler.wfile.flush()
        time.sleep(delay)
    handler.wfile.write(b"0\r\n\r\n")
    handler.wfile.flush()


def json_reply(handler, status, obj):
    data = json.dumps(obj).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def anthropic(handler, body):
    model = body.get("model", "claude-sonnet-5")
    if "[[slow]]" in json.dumps(body.get("messages", [])):
        time.sleep(3)  # keeps a Claude Code process busy (memory measurements)
    if not body.get("stream"):
        return json_reply(handler, 200, {
            "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "Hello from the fake."}],
            "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 25, "output_tokens": 6, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 7},
        })
    start = {"type": "message_start", "message": {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
             "content": [], "stop_reason": None, "stop_sequence": None, "usage": ANTHROPIC_USAGE_START}}
    events = [("message_start", start),
              ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
              ("ping", {"type": "ping"})]
    for word in ["Hello", " from", " the", " fake."]:
        events.append(("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word}}))
    events += [("content_block_stop", {"type": "content_block_stop", "index": 0}),
               ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 6}}),
               ("message_stop", {"type": "message_stop"})]
    sse(handler, [f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events])


def openai(handler, body):
    model = body.get("model", "gpt-4.1")
    usage = {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15, "prompt_tokens_details": {"cached_tokens": 3}}
    if not body.get("stream"):
        return json_reply(handler, 200, {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 1700000000, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the fake."}, "finish_reason": "stop"}],
            "usage": usage,
        })
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000, "model": model}
    chunks = [dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])]
    for word in ["Hello", " from", " the", " fake."]:
        chunks.append(dict(base, choices=[{"index": 0, "delta": {"content": word}, "finish_reason": None}]))
    chunks.append(dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append(dict(base, choices=[], usage=usage))
    sse(handler, [f"data: {json.dumps(c)}\n\n" for c in chunks] + ["data: [DONE]\n\n"])


def gemini(handler, path):
    usage = {"promptTokenCount": 9, "candidatesTokenCount": 4, "totalTokenCount": 13, "cachedContentTokenCount": 2}
    def chunk(text, last):
        c = {"candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}],
             "modelVersion": "gemini-2.5-flash"}
        if last:
            c["candidates"][0]["finishReason"] = "STOP"
        c["usageMetadata"] = usage
        return c
    if ":streamGenerateContent" in path:
        words = ["Hello", " from", " the", " fake."]
        return sse(handler, [f"data: {json.dumps(chunk(w, i == len(words) - 1))}\r\n\r\n" for i, w in enumerate(words)])
    json_reply(handler, 200, chunk("Hello from the fake.", True))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        # Claude Code checks that its base URL answers before its first request.
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_GET(self):
        self.record(b"")
        json_reply(self, 200, {"data": [], "object": "list"})

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        body = self.record(raw)
        path = self.path
        if path.startswith("/v1/messages"):
            return anthropic(self, body)
        if "chat/completions" in path:
            return openai(self, body)
        if ":generateContent" in path or ":streamGenerateContent" in path:
            return gemini(self, path)
        json_reply(self, 404, {"error": {"message": f"fake has no {path}"}})

    def record(self, raw):
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"_unparsed": True}
        with LOCK:
            SEEN.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        return body


def start(port=0):
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
