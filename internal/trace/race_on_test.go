//go:build race

package trace_test

// Under the race detector the in-process nats-server runs several times
// slower: the scale test then builds a tenth of the index. make test runs
// it without -race (the full 100,000), as BenchmarkTrace100k does.
const raceEnabled = true
