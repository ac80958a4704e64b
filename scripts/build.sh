#!/usr/bin/env bash
# Builds the FC binary (target/main, handler "main", runtime go1) and the zip
# that FC accepts (dist/vpnauthz.zip, the binary at its root, executable).
set -euo pipefail
cd "$(dirname "$0")/.."

version=${VPNAUTHZ_VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
mkdir -p target dist
GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go build -trimpath \
  -tags fc -ldflags="-s -w -X vpnauthz/internal/version.Release=${version}" -o target/main .
chmod 0755 target/main

rm -f dist/vpnauthz.zip
# go run keeps the exec bit inside the zip on every platform, unlike some zip tools.
go run ./scripts/fczip target/main dist/vpnauthz.zip
echo "built target/main ($(wc -c <target/main) bytes, version ${version}) and dist/vpnauthz.zip"
