// Package e2e holds the end-to-end tests and benchmarks of the whole
// pipeline: a private PostgreSQL (localpg), in-process nats-server
// (localnats, single server or a 3-node cluster), the Jira sandbox over HTTP,
// and capture.Run and ticketer.Run in-process, configured through getenv
// maps exactly as the binaries are.
//
// The package has no code of its own: everything is in its _test.go files.
//
//	go test -race ./internal/e2e/                              # the tests (~1 min on 2 cores)
//	go test -run '^$' -bench . -benchtime 1x -count 3 ./internal/e2e/  # the benchmarks
//
// Results of the benchmarks are in BENCHMARKS.md at the repository root.
package e2e
