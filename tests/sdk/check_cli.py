"""The real Claude Code CLI behind the sidecar: a claude-cli pool of one subscription-style account
(a CLAUDE_CONFIG_DIR whose settings name an apiKeyHelper) and one API-key account, run headless
and offline against the fake Anthropic API; the official Anthropic and OpenAI SDKs call it, JSON
and streaming, and a two-turn session resumes.

Usage: python tests/sdk/check_cli.py path/to/llm-sidecar path/to/claude [--measure]
  --measure: also print the sidecar's added time to first token over running the CLI directly
             (p50 of 20) and the memory a running process slot costs.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import check_sdks as sdk  # noqa: E402
import fake_provider  # noqa: E402

SUB_KEY, API_KEY = "sk-ant-sub-REAL-5", "sk-ant-api-REAL-6"


def setup(fake_port):
    root = tempfile.mkdtemp(prefix="llm-sidecar-cli-check-")
    work, home, sub = (os.path.join(root, d) for d in ("work", "home", "max-1"))
    for d in (work, home, sub):
        os.makedirs(d)
    # A logged-in config directory without a key in the environment: the CLI asks the helper.
    with open(os.path.join(sub, "settings.json"), "w") as f:
        json.dump({"apiKeyHelper": f"echo {SUB_KEY}"}, f)
    cli_env = {"ANTHROPIC_BASE_URL": f"http://127.0.0.1:{fake_port}", "DISABLE_TELEMETRY": "1",
               "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
    return root, work, home, sub, cli_env


def config(claude, work, sub, cli_env, port, admin, db):
    env = ", ".join(f'{k}: "{v}"' for k, v in cli_env.items())
    return f"""listen: "127.0.0.1:{port}"
admin: {{ listen: "127.0.0.1:{admin}" }}
log: {{ sqlite: "{db}" }}
routes:
  - {{ name: code, match: {{ path_prefix: /code }}, strip_prefix: true, pool: code }}
  - {{ name: unified, match: {{ path_prefix: /v1 }}, api: openai }}
models:
  - {{ name: claude-code, targets: [ {{ pool: code, model: sonnet }} ] }}
pools:
  code:
    provider: claude-cli
    cli: {{ binary: "{claude}", cwd: "{work}", allow_dirs: ["{work}"], env: {{ {env} }} }}
    timeouts: {{ first_byte: 60s, idle: 60s, total: 2m }}
    accounts:
      - {{ name: max-1, config_dir: "{sub}", max_concurrent: 4 }}
      - {{ name: api-1, key_env: LLMS_CLI_KEY, max_concurrent: 4 }}
"""


def keys_seen(since=0):
    keys = []
    for path, headers, _ in fake_provider.SEEN[since:]:
        if path.startswith("/v1/messages"):
            keys.append(headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer "))
    return keys


def checks(base):
    import anthropic
    import openai

    a = anthropic.Anthropic(base_url=f"{base}/code", api_key="placeholder", max_retries=0, timeout=120)
    msg = a.messages.create(model="sonnet", max_tokens=64, messages=[{"role": "user", "content": "say hi"}])
    sdk.check(msg.content[0].text == "Hello from the fake.", "claude-cli: Anthropic SDK JSON through the real CLI")
    sdk.check(msg.usage.input_tokens == 25 and msg.usage.output_tokens == 6, f"claude-cli: usage from the CLI's result ({msg.usage})")
    with a.messages.stream(model="sonnet", max_tokens=64, messages=[{"role": "user", "content": "say hi"}]) as s:
        text = "".join(s.text_stream)
    sdk.check(text == "Hello from the fake.", "claude-cli: Anthropic SDK streaming through the real CLI")

    o = openai.OpenAI(base_url=f"{base}/v1", api_key="placeholder", max_retries=0, timeout=120)
    r = o.chat.completions.create(model="claude-code", messages=[{"role": "user", "content": "hi"}])
    sdk.check(r.choices[0].message.content == "Hello from the fake." and r.model == "claude-code",
              "claude-cli: OpenAI SDK through the door, JSON")
    chunks = list(o.chat.completions.create(model="claude-code", messages=[{"role": "user", "content": "hi"}], stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    sdk.check(text == "Hello from the fake.", "claude-cli: OpenAI SDK through the door, streaming")

    # Two turns: the second resumes the CLI's session (the CLI re-sends the history upstream).
    first = a.messages.with_raw_response.create(model="sonnet", max_tokens=64,
                                                messages=[{"role": "user", "content": "remember the word kumquat"}])
    session = first.headers.get("x-session-id")
    sdk.check(bool(session), "claude-cli: the first turn names its session in x-session-id")
    before = len(fake_provider.SEEN)
    second = a.messages.create(model="sonnet", max_tokens=64, extra_headers={"x-session-id": session or ""},
                               messages=[{"role": "user", "content": "remember the word kumquat"},
                                         {"role": "assistant", "content": "Hello from the fake."},
                                         {"role": "user", "content": "which word?"}])
    sdk.check(second.content[0].text == "Hello from the fake.", "claude-cli: the second turn is answered")
    upstream = [b for p, _, b in fake_provider.SEEN[before:] if p.startswith("/v1/messages")]
    messages = upstream[-1].get("messages", []) if upstream else []
    turns = [m for m in messages if m.get("role") in ("user", "assistant")]
    history = json.dumps(turns)
    # Resumed, the CLI re-sends the conversation as turns (a fresh session would get one folded
    # prompt).
    sdk.check(len(turns) >= 3 and "kumquat" in history and "which word?" in history,
              f"claude-cli: the resumed CLI sent the first turn's history upstream ({len(turns)} turns)")

    # Both accounts serve: two at once, each account at most one (the helper's key and the API key).
    before = len(fake_provider.SEEN)
    results = []
    def one():
        results.append(a.messages.create(model="sonnet", max_tokens=16, messages=[{"role": "user", "content": "[[slow]] hi"}]))
    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seen = set(keys_seen(before))
    sdk.check(len(results) == 6, "claude-cli: six concurrent requests answered")
    sdk.check(seen == {SUB_KEY, API_KEY}, f"claude-cli: the subscription (apiKeyHelper) and the API-key account both served ({seen})")


def ttft_direct(claude, work, home, cli_env):
    env = dict(cli_env, PATH=os.environ["PATH"], HOME=home, ANTHROPIC_API_KEY=API_KEY)
    t = time.perf_counter()
    p = subprocess.Popen([claude, "-p", "--output-format", "stream-json", "--verbose", "--model", "sonnet",
                          "--no-session-persistence", "say hi"], env=env, cwd=work, stdout=subprocess.PIPE)
    for line in p.stdout:
        if b'"type":"assistant"' in line:
            first = time.perf_counter() - t
            break
    p.wait()
    return first


def ttft_sidecar(base):
    import anthropic
    a = anthropic.Anthropic(base_url=f"{base}/code", api_key="placeholder", max_retries=0, timeout=120)
    t = time.perf_counter()
    with a.messages.stream(model="sonnet", max_tokens=16, messages=[{"role": "user", "content": "say hi"}]) as s:
        for _ in s.text_stream:
            return time.perf_counter() - t


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def measure(base, proc, claude, work, home, cli_env):
    direct = [ttft_direct(claude, work, home, cli_env) for _ in range(20)]
    via = [ttft_sidecar(base) for _ in range(20)]
    d, v = statistics.median(direct), statistics.median(via)
    print(f"measure: time to first token, p50 of 20: CLI direct {d * 1000:.0f} ms, through the sidecar {v * 1000:.0f} ms, "
          f"added {(v - d) * 1000:.0f} ms")
    import anthropic
    a = anthropic.Anthropic(base_url=f"{base}/code", api_key="placeholder", max_retries=0, timeout=120)
    idle = rss_kib(proc.pid)
    threads = [threading.Thread(target=lambda: a.messages.create(model="sonnet", max_tokens=8, messages=[{"role": "user", "content": "[[slow]]"}]))
               for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(2)
    busy = rss_kib(proc.pid)
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    cli = [rss_kib(int(c)) for c in children]
    for t in threads:
        t.join()
    print(f"measure: 8 running slots: sidecar RSS {idle} -> {busy} KiB ({(busy - idle) / 8:.0f} KiB per slot); "
          f"each CLI process {statistics.median(cli) / 1024 if cli else 0:.0f} MiB RSS ({len(cli)} running)")


def main():
    binary, claude = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    fake = fake_provider.start()
    root, work, home, sub, cli_env = setup(fake.server_address[1])
    port, admin = sdk.free_port(), sdk.free_port()
    db = os.path.join(root, "requests.db")
    cfg = os.path.join(root, "sidecar.yaml")
    with open(cfg, "w") as f:
        f.write(config(claude, work, sub, cli_env, port, admin, db))
    env = dict(os.environ, LLMS_CLI_KEY=API_KEY)
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([binary, "run", "--config", cfg], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        sdk.wait_port(port, proc)
        checks(base)
        if "--measure" in sys.argv:
            measure(base, proc, claude, work, home, cli_env)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    log.seek(0)
    logs = log.read().decode(errors="replace")
    sdk.check(SUB_KEY not in logs and API_KEY not in logs, "claude-cli: no key in the sidecar's logs")
    left = subprocess.run(["pgrep", "-f", claude], capture_output=True, text=True).stdout.split()
    sdk.check(not left, f"claude-cli: no CLI process outlives the sidecar ({left})")
    print(f"\n{len(sdk.FAILURES)} failure(s)")
    return 1 if sdk.FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
