# redis-dedup: build, test, demo.
#
#   make          build the module: target/release/libredis_dedup.so
#   make test     install what a fresh Debian machine lacks, then run every test
#   make demo     run the project (see README.md)

SHELL := /bin/bash
CARGO ?= cargo
MODULE := target/release/libredis_dedup.so
APT_PACKAGES := redis-server redis-tools libclang-dev

.PHONY: all build deps test demo clean

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

# Release mode for the tests too, so the dependency tree is built once for both.
test: build
	$(CARGO) test --release --workspace

demo: build
	scripts/demo-module.sh

clean:
	$(CARGO) clean
