# make test installs what the tests need (slapd, ldap-utils; as root on
# Debian), then vets, checks formatting and runs every test with -race.

GO ?= go
BIN := bin/ldapgate

.PHONY: all deps test lint vet fmt-check bench build demo

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

# Benchmarks that start slapd need it installed.
bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./...

build:
	$(GO) build -o $(BIN) ./cmd/ldapgate

demo: build
	./$(BIN) demo
