# warden: two commands on a fresh Debian 12 machine, as root:
#   make demo   the main job, on the embedded default store
#   make test   the whole suite
# Each installs what it needs first.

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

APT_PACKAGES := build-essential pkg-config libpam0g-dev

.PHONY: all build deps test lint demo clean

all: build

deps:
	@./scripts/install-deps $(APT_PACKAGES)

build: deps
	$(CARGO) build --release --workspace

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

test: build lint
	$(CARGO) test --release --workspace

demo: build
	./scripts/demo

clean:
	$(CARGO) clean
