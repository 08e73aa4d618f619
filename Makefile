# The two commands of the README: `make demo` and `make test`.
GO ?= go
# The release: the image tag the manifests and docker-compose.yml pin.
VERSION := $(shell cat deploy/VERSION)
IMAGE ?= cowjacket/formjira

.PHONY: demo test test-short vet fmt-check proto proto-check bench build image

## demo: the whole pipeline on this machine (private Postgres, embedded
## JetStream, Jira sandbox, capture, ticketer). Ctrl-C stops it; run again to
## resume, `make demo ARGS=--fresh` to start over.
demo:
	@./scripts/ensure-deps.sh --demo
	@mkdir -p .demo && $(GO) build -o .demo/demo ./cmd/demo
	@# exec: Ctrl-C reaches the demo alone, which exits 0 (go run would exit 1).
	exec ./.demo/demo $(ARGS)

## test: every test, integration tests included (real Postgres, in-process
## nats-server, the Jira sandbox over HTTP). Four packages at a time: most
## tests wait on servers, not the CPU. The two timed tests run last, one
## package at a time, without the race detector: the Jira budget test drives
## the real binaries (built without it, as production runs them) and
## measures throughput against Jira's pace, and trace's answers are timed
## over an index of 100,000 requests; other tests sharing the CPU, or the
## race detector's cost in the in-process nats-server, would measure
## themselves instead. The longest packages start first (SLOW_PACKAGES,
## each over a minute; ./... adds the rest once), so the run does not end
## on one of them alone.
TIMED_TESTS := ^(TestJiraBudgetFoundAndShared|TestTraceAnswersInUnderASecondWith100kRequests)$$
SLOW_PACKAGES := ./internal/ticketer/ ./internal/capture/ ./cmd/demo/ ./cmd/ticketer/ ./internal/e2e/ ./internal/console/
test:
	@./scripts/ensure-deps.sh
	$(GO) test -race -p 4 -count=1 -timeout 25m -skip '$(TIMED_TESTS)' $(SLOW_PACKAGES) ./...
	$(GO) test -p 1 -count=1 -timeout 10m -run '$(TIMED_TESTS)' ./internal/e2e/ ./internal/trace/

test-short:
	$(GO) test -short -count=1 ./...

vet:
	$(GO) vet ./...

fmt-check:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

proto:
	./proto/generate.sh

## proto-check: the committed generated code is what the .proto generates.
proto-check:
	@./scripts/ensure-deps.sh --proto
	./proto/generate.sh
	@if [ -n "$$(git status --porcelain -- proto)" ]; then git status --short -- proto; git diff -- proto | head -40; echo "generated code is stale: run make proto and commit"; exit 1; fi

build:
	$(GO) build -o bin/ ./cmd/...

## image: cowjacket/formjira:$(VERSION), and `latest` as a convenience tag
## (the deploy files never use it).
image:
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) -t $(IMAGE):latest .

bench:
	$(GO) run ./cmd/bench $(ARGS)
