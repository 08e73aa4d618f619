#!/usr/bin/env bash
# Regenerates the Go code for proto/. Needs protoc (Debian: protobuf-compiler
# and libprotobuf-dev for the well-known types); protoc-gen-go is built from the
# version pinned in go.mod (tool directive), so output is reproducible.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
(cd "$root" && go build -o "$bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go)
cd "$root/proto"
protoc -I . -I /usr/include \
  --plugin=protoc-gen-go="$bin/protoc-gen-go" \
  --go_out=. --go_opt=paths=source_relative \
  cowjacket/forms/v1/forms.proto
