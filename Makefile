# make test installs what the tests need (slapd, ldap-utils; as root on
# Debian), then vets, checks formatting and runs every test with -race.

GO ?= go
BIN := bin/ldapgate

.PHONY: all deps test lint vet fmt-check bench bench-quick bench-go fuzz build demo

all: build

# slapd and ldap-utils: integration tests start real OpenLDAP servers.
deps:
	@./scripts/deps.sh

test: deps lint
	$(GO) test -race -count=1 -timeout 15m ./...
	@# The gldap patch set is its own module; its tests prove each patch.
	cd third_party/gldap && $(GO) test -race -count=1 -timeout 5m ./...

lint: vet fmt-check

vet:
	$(GO) vet ./...

# third_party/ is vendored code, kept as upstream wrote it.
fmt-check:
	@files=$$(find . -path ./third_party -prune -o -path ./.git -prune -o -name '*.go' -print | xargs -r gofmt -l); \
	if [ -n "$$files" ]; then \
		echo "gofmt: these files are not formatted (run gofmt -w on them):"; \
		echo "$$files"; \
		exit 1; \
	fi; \
	echo "gofmt: ok"

# The Go benchmarks (go test -bench); those that start slapd need it installed.
bench-go: deps
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The load benchmarks (internal/benchrun, README "Benchmarks"): direct
# slapd, slapd back-ldap and ldapgate (this tree's binary, its own process)
# on loopback; they rewrite BENCHMARKS.md and benchmarks.png and fail when
# any scenario had errors. bench is the full sizes (about fifteen minutes);
# bench-quick a short run (under two minutes) whose numbers are indicative.
bench: deps build
	$(GO) run ./internal/benchrun --ldapgate $(BIN)

bench-quick: deps build
	$(GO) run ./internal/benchrun --ldapgate $(BIN) --quick

# Every fuzz target of the repository (both modules: the root and
# third_party/gldap), one after the other, for FUZZTIME each. Their seeds
# already run in make test. Targets are found by their `func FuzzX`, so a
# new one is fuzzed without editing this; a failing input is left in the
# package's testdata/fuzz, and only that fails the run: Go 1.26's fuzz
# coordinator can end a duration-bounded run with a bare "context deadline
# exceeded" and no input (golang/go#75804, fixed in Go 1.27), which is
# reported as such and not counted as a finding.
FUZZTIME ?= 30s

fuzz:
	@set -e; found=0; \
	for file in $$(find . -path ./.git -prune -o -name '*_test.go' -print | sort | xargs grep -l '^func Fuzz'); do \
		dir=$$(dirname $$file); mod=$$dir; \
		while [ ! -f $$mod/go.mod ]; do mod=$$(dirname $$mod); done; \
		pkg=./$$(realpath --relative-to=$$mod $$dir); \
		for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file); do \
			echo "fuzz: $$target in $$pkg ($$mod) for $(FUZZTIME)"; \
			before=$$(ls $$dir/testdata/fuzz/$$target 2>/dev/null | wc -l); \
			if ! (cd $$mod && $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg); then \
				after=$$(ls $$dir/testdata/fuzz/$$target 2>/dev/null | wc -l); \
				if [ "$$after" -gt "$$before" ]; then \
					echo "fuzz: $$target found a failing input: $$dir/testdata/fuzz/$$target"; found=1; \
				else \
					echo "fuzz: $$target stopped without a failing input (Go's coordinator, golang/go#75804): not a finding"; \
				fi; \
			fi; \
		done; \
	done; \
	exit $$found

build:
	$(GO) build -o $(BIN) ./cmd/ldapgate

demo: build
	./$(BIN) demo

# Releases (README "Releases"): static linux/amd64 and linux/arm64
# binaries, LICENSE, NOTICE and their SHA256SUMS in DIST, with the version
# from git describe stamped in (`ldapgate version` prints it).
# scripts/build-static.sh holds the build flags, shared with
# deploy/container/Containerfile; deploy/'s tests run this target into a
# temporary DIST.
.PHONY: release
ifeq ($(origin VERSION),undefined)
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null)
endif
DIST ?= dist
RELEASE_PLATFORMS := linux/amd64 linux/arm64

release:
	@test -n "$(VERSION)" || { echo "release: no VERSION (git describe failed; set VERSION=...)" >&2; exit 1; }
	@mkdir -p $(DIST)
	@rm -f $(DIST)/ldapgate-*-linux-* $(DIST)/SHA256SUMS $(DIST)/LICENSE $(DIST)/NOTICE
	@set -e; for platform in $(RELEASE_PLATFORMS); do \
		os=$${platform%/*}; arch=$${platform#*/}; \
		echo "release: $(DIST)/ldapgate-$(VERSION)-$$os-$$arch"; \
		GOOS=$$os GOARCH=$$arch VERSION=$(VERSION) GO=$(GO) ./scripts/build-static.sh $(DIST)/ldapgate-$(VERSION)-$$os-$$arch; \
	done
	@cp LICENSE NOTICE $(DIST)/
	@cd $(DIST) && sha256sum ldapgate-$(VERSION)-linux-* LICENSE NOTICE > SHA256SUMS
	@echo "release: $(DIST)/SHA256SUMS"; cat $(DIST)/SHA256SUMS
