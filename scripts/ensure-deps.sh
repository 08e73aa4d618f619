#!/usr/bin/env bash
# Installs what the tests and the demo need beyond Go, when it is missing:
# the PostgreSQL server binaries (tests and the demo start a private server
# from them) and, for the tests, gcc (the race detector needs cgo),
# pg_recvlogical, systemd-analyze (the deploy
# tests verify the systemd units with it), Debian's Chromium (the console's
# browser test drives it headless) and the nats CLI (the operator-guide
# test); with --proto, protoc for the generated-code check; with --demo,
# only what `make demo` needs. nats-server runs in-process and the Jira
# sandbox is part of this repository.
set -euo pipefail

want_proto=0 demo=0
[[ "${1:-}" == "--proto" ]] && want_proto=1
[[ "${1:-}" == "--demo" ]] && demo=1

pkgs=()
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && [[ -z "${PG_BIN:-}" ]]; then
  pkgs+=(postgresql)
fi
if (( ! demo )); then
  # go test -race needs cgo, so a C compiler.
  command -v gcc >/dev/null || pkgs+=(gcc libc6-dev)
  command -v pg_recvlogical >/dev/null || pkgs+=(postgresql-client)
  command -v systemd-analyze >/dev/null || pkgs+=(systemd)
  if [[ ! -x /usr/bin/chromium ]] && [[ -z "${CHROMIUM:-}" ]]; then
    pkgs+=(chromium)
  fi
fi
if (( want_proto )); then
  command -v protoc >/dev/null || pkgs+=(protobuf-compiler)
  [[ -f /usr/include/google/protobuf/timestamp.proto ]] || pkgs+=(libprotobuf-dev)
fi

if (( ${#pkgs[@]} )); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing: ${pkgs[*]} — install them (e.g. sudo apt-get install ${pkgs[*]})" >&2
    exit 1
  fi
  echo "installing ${pkgs[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

# The operator tests drive the real `nats` CLI (the version the README
# shows); the demo prints commands that use it.
gobin="$(go env GOPATH)/bin"
if ! command -v nats >/dev/null && [[ ! -x "$gobin/nats" ]]; then
  echo "installing the nats CLI (natscli v0.5.0) into $gobin" >&2
  GOFLAGS=-mod=mod go install github.com/nats-io/natscli/nats@v0.5.0
fi

# As root the tests run Postgres as user postgres; the Debian package creates
# it, but a PG_BIN install may not have.
if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi
