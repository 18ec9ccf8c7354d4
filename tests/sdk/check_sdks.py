"""The official Python SDKs (anthropic, openai, google-genai), given the sidecar's base URL and a
placeholder key, complete JSON and streaming calls; the upstream sees only the injected keys.

Usage: python tests/sdk/check_sdks.py [path/to/llm-sidecar]   (exit 0 when every check passes)
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import fake_provider  # noqa: E402

KEYS = {"ANTHROPIC": "sk-ant-REAL-1", "OPENAI": "sk-oai-REAL-2", "GEMINI": "gm-REAL-3", "OPENROUTER": "sk-or-REAL-4"}
FAILURES = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILURES.append(what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc):
    deadline = time.time() + 15
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"llm-sidecar exited early with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("llm-sidecar did not start listening")


PRICES = """prices:
  - { model: "claude-sonnet-*", input: 3.0, output: 15.0, cache_read: 0.30, cache_write: 3.75 }
  - { model: "gpt-4.1*", input: 2.0, output: 8.0, cache_read: 0.5 }
  - { model: "gemini-2.5-flash*", input: 0.30, output: 2.50, cache_read: 0.075 }
"""


def config(fake, port, admin, db):
    up = f"http://127.0.0.1:{fake}"
    pools = ""
    for name, provider, base in [("claude", "anthropic", up), ("gpt", "openai", up), ("gem", "gemini", up), ("router", "openrouter", up + "/api")]:
        var = "LLMS_SDK_" + provider.upper()
        pools += f"  {name}:\n    provider: {provider}\n    accounts:\n      - {{ name: main, base_url: \"{base}\", key_env: {var} }}\n"
    routes = "".join(f"  - {{ name: {r}, match: {{ path_prefix: /{r} }}, pool: {p} }}\n"
                     for r, p in [("anthropic", "claude"), ("openai", "gpt"), ("gemini", "gem"), ("openrouter", "router")])
    # The front doors: OpenAI's API at /v1 and Anthropic's at /any, serving any model of any pool.
    routes += "  - { name: unified, match: { path_prefix: /v1 }, api: openai }\n"
    routes += "  - { name: any, match: { path_prefix: /any }, api: anthropic }\n"
    models = ("models:\n  - { name: smart, targets: [ { pool: claude, model: claude-sonnet-4-5 } ] }\n"
              "  - { name: fast, targets: [ { pool: gpt, model: gpt-4.1 } ] }\n"
              "  - { name: flash, targets: [ { pool: gem, model: gemini-2.5-flash } ] }\n")
    log = f'log: {{ sqlite: "{db}" }}\n'
    return f'listen: "127.0.0.1:{port}"\nadmin: {{ listen: "127.0.0.1:{admin}" }}\n{log}{PRICES}{models}routes:\n{routes}pools:\n{pools}'


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/debug/llm-sidecar"
    fake = fake_provider.start()
    port, admin = free_port(), free_port()
    workdir = tempfile.mkdtemp()
    db = os.path.join(workdir, "requests.db")
    cfg = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    cfg.write(config(fake.server_address[1], port, admin, db))
    cfg.close()
    env = dict(os.environ, **{"LLMS_SDK_" + k: v for k, v in KEYS.items()})
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([binary, "run", "--config", cfg.name], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc)
        run_checks(f"http://127.0.0.1:{port}")
        check_doors(f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    log.seek(0)
    logs = log.read().decode(errors="replace")
    check(not any(k in logs for k in KEYS.values()), "no real key in the sidecar's logs")
    seen_keys = set()
    for _path, headers, _ in fake_provider.SEEN:
        for h in ("x-api-key", "authorization", "x-goog-api-key"):
            if h in headers:
                seen_keys.add(headers[h].removeprefix("Bearer "))
    check(seen_keys <= set(KEYS.values()), f"upstream saw only injected keys ({sorted(seen_keys)})")
    check("placeholder" not in json.dumps(fake_provider.SEEN), "no placeholder key reached the upstream")
    check_rows(binary, db)
    print(f"\n{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


def check_rows(binary, db):
    """The request log after the SDK calls (the sidecar flushed it on SIGTERM)."""
    import sqlite3
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("SELECT * FROM requests ORDER BY id")]
    by = lambda route, stream: [r for r in rows if r["route"] == route and r["stream"] == stream and r["status"] == 200]
    a = by("anthropic", 1)
    check(len(a) == 1 and (a[0]["input_tokens"], a[0]["output_tokens"], a[0]["cache_read_tokens"]) == (25, 6, 7)
          and a[0]["usage_source"] == "reported", f"anthropic stream logged exactly as reported ({a[:1]})")
    cost = (25 * 3.0 + 6 * 15.0 + 7 * 0.30) / 1e6
    check(len(a) == 1 and abs(a[0]["cost_usd"] - cost) < 1e-12, "anthropic cost follows the price table")
    o = by("openai", 1)
    check(len(o) == 1 and (o[0]["input_tokens"], o[0]["output_tokens"], o[0]["cache_read_tokens"]) == (11, 4, 3),
          f"openai stream logged with usage the client did not ask for ({o[:1]})")
    g = by("gemini", 1)
    check(len(g) == 1 and (g[0]["input_tokens"], g[0]["output_tokens"]) == (9, 4), "gemini stream logged")
    served = [r for r in rows if r["status"] == 200 and r["pool"]]  # the model lists are answered locally
    check(all(r["usage_source"] == "reported" for r in served), "every call an upstream served has reported usage")
    doors = [r for r in served if r["route"] in ("unified", "any")]
    check(len(doors) == 8 and {r["pool"] for r in doors} == {"claude", "gpt", "gem"},
          f"the front doors' calls are logged with the pool that served ({len(doors)})")
    bad = [(r["route"], r["stream"], r["error_kind"]) for r in rows if r["status"] == 200 and r["error_kind"]]
    check(not bad, f"no error recorded for complete calls {bad}")
    out = subprocess.run([binary, "usage", "--db", db, "--by", "account", "--json"], capture_output=True, text=True)
    groups = {g["key"]: g for g in json.loads(out.stdout)}
    for key, (pool, acct) in {"claude/main": ("claude", "main"), "gpt/main": ("gpt", "main")}.items():
        sel = [r for r in rows if r["pool"] == pool and r["account"] == acct]
        want = (len(sel), sum(r["input_tokens"] or 0 for r in sel), round(sum(r["cost_usd"] or 0 for r in sel), 12))
        got = groups.get(key, {})
        check((got.get("requests"), got.get("input_tokens"), round(got.get("cost_usd", -1), 12)) == want,
              f"usage --by account agrees with the rows for {key}")


def check_doors(base):
    """The front doors with the official SDKs: any model of any pool, JSON and streaming."""
    import anthropic
    import openai

    o = openai.OpenAI(base_url=f"{base}/v1", api_key="placeholder", max_retries=0)
    check("smart" in [m.id for m in o.models.list()], "OpenAI door: models.list names the configured models")
    for model, want_prompt in [("smart", 32), ("flash", 9)]:
        r = o.chat.completions.create(model=model, messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}])
        check(r.choices[0].message.content == "Hello from the fake." and r.model == model,
              f"OpenAI door, {model}: JSON in OpenAI's shape")
        check(r.usage.prompt_tokens == want_prompt, f"OpenAI door, {model}: prompt_tokens counts all input ({r.usage})")
        chunks = list(o.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], stream=True,
                                                stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        check(text == "Hello from the fake.", f"OpenAI door, {model}: streaming text")
        usage = [c.usage for c in chunks if c.usage]
        check(len(usage) == 1 and usage[0].prompt_tokens == want_prompt, f"OpenAI door, {model}: one usage chunk ({usage})")
    try:
        o.chat.completions.create(model="smart", messages=[{"role": "user", "content": "hi"}], temperature=3)
        check(False, "OpenAI door: temperature 3 refused")
    except openai.BadRequestError as e:
        check("temperature" in str(e), "OpenAI door: the SDK surfaces the 400 naming temperature")
    try:
        o.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
        check(False, "OpenAI door: unknown model refused")
    except openai.NotFoundError as e:
        check("nope" in str(e), "OpenAI door: an unknown model is a 404 naming it")

    a = anthropic.Anthropic(base_url=f"{base}/any", api_key="placeholder", max_retries=0)
    for model in ("fast", "flash"):
        msg = a.messages.create(model=model, max_tokens=32, system="Be brief.", messages=[{"role": "user", "content": "hi"}])
        check(msg.content[0].text == "Hello from the fake." and msg.stop_reason == "end_turn",
              f"Anthropic door, {model}: JSON in Anthropic's shape")
        with a.messages.stream(model=model, max_tokens=32, messages=[{"role": "user", "content": "hi"}]) as s:
            text = "".join(s.text_stream)
            final = s.get_final_message()
        check(text == "Hello from the fake.", f"Anthropic door, {model}: streaming text")
        check(final.usage.output_tokens == 4, f"Anthropic door, {model}: usage reaches the SDK ({final.usage})")


def run_checks(base):
    import anthropic
    import openai
    from google import genai
    from google.genai import types

    a = anthropic.Anthropic(base_url=f"{base}/anthropic", api_key="placeholder", max_retries=0)
    msg = a.messages.create(model="claude-sonnet-5", max_tokens=32, messages=[{"role": "user", "content": "hi"}])
    check(msg.content[0].text == "Hello from the fake.", "anthropic JSON")
    with a.messages.stream(model="claude-sonnet-5", max_tokens=32, messages=[{"role": "user", "content": "hi"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    check(text == "Hello from the fake.", "anthropic streaming text")
    check(final.usage.input_tokens == 25 and final.usage.output_tokens == 6, "anthropic streaming usage reaches the SDK")

    for route in ("openai", "openrouter"):
        o = openai.OpenAI(base_url=f"{base}/{route}/v1", api_key="placeholder", max_retries=0)
        r = o.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
        check(r.choices[0].message.content == "Hello from the fake.", f"{route} JSON")
        chunks = list(o.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}], stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        check(text == "Hello from the fake.", f"{route} streaming text")
        check(all(c.usage is None and c.choices for c in chunks), f"{route}: the client that did not ask sees no usage chunk")

    g = genai.Client(api_key="placeholder", http_options=types.HttpOptions(base_url=f"{base}/gemini"))
    r = g.models.generate_content(model="gemini-2.5-flash", contents="hi")
    check(r.text == "Hello from the fake.", "gemini JSON")
    text = "".join(c.text or "" for c in g.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))
    check(text == "Hello from the fake.", "gemini streaming text")

    req = urllib.request.Request(f"{base}/anthropic/v1/messages", data=b'{"model": ', method="POST",
                                 headers={"content-type": "application/json", "x-api-key": "placeholder"})
    try:
        urllib.request.urlopen(req)
        check(False, "malformed JSON refused")
    except urllib.error.HTTPError as e:
        body = json.loads(e.read())
        check(e.code == 400 and body.get("type") == "error" and body["error"]["type"] == "invalid_request_error",
              "malformed JSON gets 400 in Anthropic's shape")
    try:
        a.messages.create(model="m", max_tokens=1, messages=[{"role": "user", "content": "x" * 64}], extra_body={"deep": json.loads("[" * 70 + "]" * 70)})
        check(False, "deep JSON refused")
    except anthropic.BadRequestError as e:
        check("nests deeper" in str(e), "the SDK surfaces the sidecar's 400 as a BadRequestError with our message")


if __name__ == "__main__":
    sys.exit(main())
