# The two commands of the README: `make run` runs the sidecar, `make test` runs the tests.
# Both install what a fresh machine lacks first (cmake, needed by Pingora's zlib-ng build).

SHELL := /bin/bash
CONFIG ?= conf/sidecar.yaml
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
VENV := target/sdk-venv
PROVIDER_KEYS := ANTHROPIC_API_KEY OPENAI_API_KEY GEMINI_API_KEY OPENROUTER_API_KEY

.PHONY: run test deps test-deps sdk-check fuzz
CLAUDE_VERSION := 2.1.197
CLAUDE := target/claude-cli/node_modules/@anthropic-ai/claude-code-linux-x64/claude

deps:
	@command -v cmake >/dev/null || { echo "installing cmake (needed to build Pingora)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq cmake >/dev/null; }
	@command -v cargo >/dev/null || { echo "cargo is missing: install Rust from https://rustup.rs"; exit 1; }

# The shared-state tests start their own redis-server (Debian's package) on a free port.
test-deps: deps
	@command -v redis-server >/dev/null || { echo "installing redis-server (the shared-state tests start their own)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq redis-server >/dev/null; }

# Keys come from the environment. Unset ones get a placeholder so the sidecar starts;
# the provider will then refuse those calls until a real key is exported.
run: deps
	cargo build --release --bin llm-sidecar
	@for k in $(PROVIDER_KEYS); do [ -n "$${!k}" ] || echo "note: $$k is not set; using a placeholder (calls to that provider will be refused)"; done; \
	for k in $(PROVIDER_KEYS); do export $$k="$${!k:-placeholder-$$k}"; done; \
	exec ./target/release/llm-sidecar run --config $(CONFIG)

test: test-deps
	cargo test
	$(MAKE) --no-print-directory sdk-check

# The official Python SDKs against the real binary and a fake provider; then the real Claude Code
# CLI (npm, its native linux-x64 binary) as a claude-cli pool, headless and offline.
sdk-check:
	cargo build --bin llm-sidecar
	@[ -x $(VENV)/bin/python ] || python3 -m venv $(VENV)
	@$(VENV)/bin/python -c "import anthropic, openai, google.genai" 2>/dev/null || \
		$(VENV)/bin/pip install -q anthropic openai google-genai
	$(VENV)/bin/python tests/sdk/check_sdks.py target/debug/llm-sidecar
	@[ -x $(CLAUDE) ] || { command -v npm >/dev/null || { echo "installing npm (for the Claude Code CLI)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq npm >/dev/null; }; \
		npm install -s --prefix target/claude-cli --no-audit --no-fund @anthropic-ai/claude-code@$(CLAUDE_VERSION); }
	$(VENV)/bin/python tests/sdk/check_cli.py target/debug/llm-sidecar $(CLAUDE)

# Fuzzing, never part of `make test`: cargo-fuzz (installed when missing) on the stable toolchain
# (RUSTC_BOOTSTRAP=1 lets it pass the sanitizer flags), each target for FUZZ_SECONDS from seeds
# built out of the fixtures. Every target runs; crashing inputs land in fuzz/artifacts/<target>/
# (fuzz/README.md: how one becomes a regression test).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= admission sse_meter json_usage config translate_request translate_response translate_stream cli_stream_json path

fuzz: deps
	@cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
	bash fuzz/seeds.sh
	@failed=; for t in $(FUZZ_TARGETS); do \
		echo "== fuzz $$t ($(FUZZ_SECONDS)s)"; \
		RUSTC_BOOTSTRAP=1 cargo fuzz run -s none $$t fuzz/corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) || failed="$$failed $$t"; \
	done; \
	[ -z "$$failed" ] || { echo "fuzz: crashes in$$failed (inputs in fuzz/artifacts/)"; exit 1; }
