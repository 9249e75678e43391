#!/bin/sh
# Builds one static ldapgate binary the way releases and the container image
# are built: no cgo (no libc, nothing to resolve at run time), -trimpath (no
# build machine paths), stripped, and the version stamped into
# internal/app.version. `make release` and deploy/container/Containerfile
# both run this, so the flags live here once.
#
#   scripts/build-static.sh OUT        GOOS, GOARCH (default linux/amd64),
#                                      VERSION (default: git describe) and
#                                      GO (default: go) from the environment
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 OUT" >&2
	exit 2
fi
out=$1
if [ -z "${VERSION:-}" ]; then
	VERSION=$(git describe --tags --always --dirty)
fi

CGO_ENABLED=0 GOOS=${GOOS:-linux} GOARCH=${GOARCH:-amd64} "${GO:-go}" build \
	-trimpath \
	-ldflags "-s -w -X github.com/ldapgate/ldapgate/internal/app.version=${VERSION}" \
	-o "$out" ./cmd/ldapgate
