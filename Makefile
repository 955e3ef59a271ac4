# warden: two commands on a fresh Debian 12 machine, as root:
#   make demo   the main job, on the embedded default store
#   make test   the whole suite
# Each installs what it needs first.

SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

# To build: a C toolchain, libpam's headers, and msgfmt for the catalogues.
BUILD_PACKAGES := build-essential pkg-config libpam0g-dev gettext
# To run the demo and the end-to-end tests: real sshd, ssh, sudo, pamtester;
# e2fsprogs and util-linux (mount, fsfreeze) for the stalled-store test;
# fail2ban for fail2ban-regex against the shipped filter; nftables and iproute2
# for the firewall test in a network namespace; locales (localedef) for the
# translated messages' test; mmdebstrap and
# systemd-container (installed without recommends: libnss-mymachines would edit
# the host's nsswitch.conf) to boot a Debian 12 guest for the booted test.
RUN_PACKAGES := openssh-server openssh-client sshpass pamtester sudo passwd util-linux e2fsprogs libpam-modules libpam-runtime dbus-daemon dbus-bin man-db oathtool openssl redis-server redis-sentinel systemd rpm fail2ban nftables iproute2 locales mmdebstrap systemd-container

.PHONY: all build deps test lint demo docs locale deb rpm bench soak fuzz clean

all: build

deps:
	@./scripts/install-deps $(BUILD_PACKAGES) $(RUN_PACKAGES)

build: deps
	$(CARGO) build --release --workspace

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

test: build lint deb rpm
	set -o pipefail; $(CARGO) test --release --workspace 2>&1 | tee target/test.log
	@./scripts/test-summary target/test.log

demo: build
	./target/release/warden-demo

# pam_warden against pam_faillock and a bare stack; writes target/bench/report.md.
bench: build
	./target/release/warden-bench

# The long robustness runs (a 30 s, 64-client flood), not part of make test.
soak: build
	$(CARGO) test --release -p warden-e2e --test soak -- --ignored --nocapture

# Each fuzz target (frame decoder, request handling, config parser) for FUZZ_SECS.
# cargo-fuzz wants nightly flags; RUSTC_BOOTSTRAP lets this stable toolchain take
# them, and with no sanitizer none of them changes what the code does.
FUZZ_SECS ?= 60
fuzz: deps
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install --locked cargo-fuzz
	cd fuzz && for t in frame request config; do \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -s none -O $$t -- -max_total_time=$(FUZZ_SECS) || exit 1; \
	done

# The man pages: wardenctl(8) and wardend(8) from their clap definitions, with
# wardenctl's completions; pam_warden(8) and warden.toml(5) as written in docs/man.
docs: build
	./target/release/wardenctl generate-docs target/docs
	./target/release/wardend --man > target/docs/wardend.8
	cp docs/man/pam_warden.8 docs/man/warden.toml.5 target/docs/

# The message catalogues, po/LL.po compiled to target/locale/LL/LC_MESSAGES/warden.mo.
locale: deps
	for po in po/*.po; do \
		lang=$$(basename $$po .po); mkdir -p target/locale/$$lang/LC_MESSAGES; \
		msgfmt --check -o target/locale/$$lang/LC_MESSAGES/warden.mo $$po || exit 1; \
	done

# One package, warden, from the whole workspace. Each installs its tool if missing.
deb: build docs locale
	@command -v cargo-deb >/dev/null 2>&1 || $(CARGO) install --locked cargo-deb
	$(CARGO) deb -p warden-daemon --no-build -o target/debian/warden.deb

rpm: build docs locale
	@command -v cargo-generate-rpm >/dev/null 2>&1 || $(CARGO) install --locked cargo-generate-rpm
	$(CARGO) generate-rpm -p daemon -o target/generate-rpm/warden.rpm

clean:
	$(CARGO) clean
