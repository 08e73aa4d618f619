//go:build race

package trace_test

// Under the race detector the in-process nats-server runs several times
// slower: the scale test then builds a tenth of the index (the full
// 100,000 run without -race and BenchmarkTrace100k check the claim).
const raceEnabled = true
