"""Callgrind instructions per request: a sidecar binary under callgrind (every thread counted),
counters zeroed after 200 warm-up requests, then N keep-alive POSTs through a two-account
Anthropic pool with prices, a budget and the SQLite log, against tests/sdk/fake_provider.py;
prints the instructions per request.

  python3 benches/callgrind.py target/release/llm-sidecar pass 1000   # /anthropic pass-through
  python3 benches/callgrind.py target/release/llm-sidecar door 1000   # the OpenAI front door
  python3 benches/callgrind.py target/release/llm-sidecar shared 1000 # pass-through + shared.redis
Needs valgrind (callgrind_control). Instruction counts do not depend on the machine's load."""
import http.client, os, subprocess, sys, tempfile, time, glob, re
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "sdk"))
import fake_provider, check_sdks as sdk
binary, leg, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
fake = fake_provider.start()
up = f"http://127.0.0.1:{fake.server_address[1]}"
port, admin = sdk.free_port(), sdk.free_port()
d = tempfile.mkdtemp()
door = "models:\n  - { name: bench, targets: [ { pool: claude, model: claude-sonnet-4-5 } ] }\n" if leg == "door" else ""
droute = "  - { name: door, match: { path_prefix: /door }, api: openai }\n" if leg == "door" else ""
shared = ""
if leg == "shared":  # a local redis-server for the shared leg
    rport = sdk.free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(rport), "--save", "", "--appendonly", "no", "--dir", d],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    shared = f'shared:\n  redis: {{ url: "redis://127.0.0.1:{rport}/0", prefix: cg, timeout: 2s }}\n'
cfg = shared + f'''listen: "127.0.0.1:{port}"
admin: {{ listen: "127.0.0.1:{admin}" }}
log: {{ sqlite: "{d}/requests.db" }}
prices:
  - {{ model: "claude-sonnet-*", input: 3.0, output: 15.0, cache_read: 0.3, cache_write: 3.75 }}
{door}routes:
{droute}  - {{ name: anthropic, match: {{ path_prefix: /anthropic }}, pool: claude }}
pools:
  claude:
    provider: anthropic
    accounts:
      - {{ name: a, base_url: "{up}", key_env: CG_KEY, budget: {{ weekly_usd: 1000000 }} }}
      - {{ name: b, base_url: "{up}", key_env: CG_KEY }}
'''
open(f"{d}/c.yaml", "w").write(cfg)
out = f"{d}/cg.out"
env = dict(os.environ, CG_KEY="sk-real")
p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary, "run", "--config", f"{d}/c.yaml"],
                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
deadline = time.time() + 120
import socket
while True:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close(); break
    except OSError:
        time.sleep(0.2)
        if time.time() > deadline: raise SystemExit("no start")
if leg == "door":
    path, body = "/door/chat/completions", open(os.path.join(ROOT, "benches", "load", "door.json"), "rb").read()
else:
    path, body = "/anthropic/v1/messages", open(os.path.join(ROOT, "benches", "load", "anthropic.json"), "rb").read()
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
def go(k):
    for _ in range(k):
        c.request("POST", path, body=body, headers={"content-type": "application/json", "x-api-key": "client", "anthropic-version": "2023-06-01"})
        r = c.getresponse(); r.read()
        assert r.status == 200, r.status
go(200)
time.sleep(1)
subprocess.run(["callgrind_control", "-z", str(p.pid)], capture_output=True)
go(n)
time.sleep(1)
subprocess.run(["callgrind_control", "-d", str(p.pid)], capture_output=True)
time.sleep(2)
p.terminate(); p.wait(timeout=60)
if leg == "shared":
    redis.terminate()
best = None
for f in glob.glob(out + "*"):
    txt = open(f, errors="replace").read()
    m = re.search(r"^summary:\s+(\d+)", txt, re.M) or re.search(r"^totals:\s+(\d+)", txt, re.M)
    trig = re.search(r"^desc: Trigger: (.*)$", txt, re.M)
    if m and trig and "Program termination" not in trig.group(1) and "zero" not in trig.group(1).lower():
        best = int(m.group(1))
print("OUT", out)
print(f"RESULT {leg} {os.path.basename(binary)} Ir/request {best / n if best else 'n/a'}")
