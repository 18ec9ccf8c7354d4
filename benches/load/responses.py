#!/usr/bin/env python3
"""Writes the upstream's answers for benches/load/run.sh into DIR, escaped for an nginx
single-quoted string: an Anthropic message, an OpenAI chat completion, an Anthropic stream."""

import json
import sys

out = sys.argv[1]
text = ("Items that arrived damaged or in the wrong size can be returned within 30 days for a full "
        "refund; unwanted items can be returned unused within 14 days.")
anthropic = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
    "model": "claude-sonnet-4-5-20250929", "content": [{"type": "text", "text": text}],
    "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 212, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
              "output_tokens": 48, "service_tier": "standard"},
}
openai = {
    "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "object": "chat.completion", "created": 1764028800,
    "model": "gpt-4.1-mini-2025-04-14",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None,
                                          "annotations": []}, "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 212, "completion_tokens": 48, "total_tokens": 260,
              "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
    "service_tier": "default", "system_fingerprint": "fp_6f2eabb9a5",
}


def ev(name, data):
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


words = text.split(" ")
sse = ev("message_start", {"type": "message_start", "message": dict(
    anthropic, content=[], stop_reason=None, usage={"input_tokens": 212, "output_tokens": 1})})
sse += ev("content_block_start", {"type": "content_block_start", "index": 0,
                                  "content_block": {"type": "text", "text": ""}})
sse += ev("ping", {"type": "ping"})
for i in range(0, len(words), 2):
    sse += ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                      "delta": {"type": "text_delta", "text": " ".join(words[i:i + 2]) + " "}})
sse += ev("content_block_stop", {"type": "content_block_stop", "index": 0})
sse += ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                            "usage": {"output_tokens": 48}})
sse += ev("message_stop", {"type": "message_stop"})

for name, body in [("anthropic.json", json.dumps(anthropic)), ("openai.json", json.dumps(openai)),
                   ("anthropic.sse", sse)]:
    assert "'" not in body and "\\" not in body, name
    with open(f"{out}/{name}", "w") as f:
        f.write(body.replace("\n", "\\n"))
