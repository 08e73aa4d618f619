package stream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestReadAll: every message up to the last at the call, in order, over
// several batches, without waiting out a fetch's MaxWait on the short last
// batch; fn returning false ends it.
func TestReadAll(t *testing.T) {
	js := connect(t)
	ctx := context.Background()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R", Subjects: []string{"r.>"}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1203
	for i := range n {
		if _, err := js.Publish(ctx, fmt.Sprintf("r.%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	all := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	start := time.Now()
	var seqs []uint64
	if err := ReadAll(ctx, st, all, func(m jetstream.Msg) bool {
		md, _ := m.Metadata()
		seqs = append(seqs, md.Sequence.Stream)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 900*time.Millisecond {
		t.Errorf("reading %d messages took %v: a batch waited out its MaxWait", n, took)
	}
	if len(seqs) != n || seqs[0] != 1 || seqs[n-1] != n {
		t.Fatalf("read %d messages (%v…), want 1..%d", len(seqs), seqs[:min(3, len(seqs))], n)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("message %d has sequence %d", i, s)
		}
	}
	got := 0
	if err := ReadAll(ctx, st, all, func(jetstream.Msg) bool { got++; return got < 10 }); err != nil || got != 10 {
		t.Errorf("stopping at 10: %d read, %v", got, err)
	}
}

// fakeStream serves ReadAll pages as scripted: each fetch (FetchNoWait or
// Fetch) takes the next page; a nil page is an empty batch.
type fakeStream struct {
	jetstream.Stream
	last  uint64
	pages [][]uint64
	calls []string
}

func (f *fakeStream) Info(context.Context, ...jetstream.StreamInfoOpt) (*jetstream.StreamInfo, error) {
	return &jetstream.StreamInfo{Config: jetstream.StreamConfig{Name: "F"}, State: jetstream.StreamState{Msgs: f.last, LastSeq: f.last}}, nil
}

func (f *fakeStream) OrderedConsumer(context.Context, jetstream.OrderedConsumerConfig) (jetstream.Consumer, error) {
	return &fakeConsumer{f: f}, nil
}

type fakeConsumer struct {
	jetstream.Consumer
	f *fakeStream
}

func (c *fakeConsumer) page(call string) jetstream.MessageBatch {
	c.f.calls = append(c.f.calls, call)
	var seqs []uint64
	if len(c.f.pages) > 0 {
		seqs, c.f.pages = c.f.pages[0], c.f.pages[1:]
	}
	ch := make(chan jetstream.Msg, len(seqs))
	for _, s := range seqs {
		ch <- fakeMsg{seq: s, pending: c.f.last - s}
	}
	close(ch)
	return fakeBatch{ch}
}

func (c *fakeConsumer) FetchNoWait(int) (jetstream.MessageBatch, error) { return c.page("nowait"), nil }

func (c *fakeConsumer) Fetch(int, ...jetstream.FetchOpt) (jetstream.MessageBatch, error) {
	return c.page("wait"), nil
}

type fakeBatch struct{ ch chan jetstream.Msg }

func (b fakeBatch) Messages() <-chan jetstream.Msg { return b.ch }
func (b fakeBatch) Error() error                   { return nil }

type fakeMsg struct {
	jetstream.Msg
	seq, pending uint64
}

func (m fakeMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: m.seq}, NumPending: m.pending}, nil
}

// TestReadAllLaterPages: a later page that is empty at once is waited for
// (the ordered consumer may be made anew on a busy server), and when
// nothing more comes though messages remain, the read fails rather than
// pass a short list for the whole; nothing in range is no failure.
func TestReadAllLaterPages(t *testing.T) {
	for _, tc := range []struct {
		name  string
		last  uint64
		pages [][]uint64
		want  []uint64
		err   error
		calls string
	}{
		{"a later page comes on waiting", 4, [][]uint64{{1, 2}, nil, {3, 4}}, []uint64{1, 2, 3, 4}, nil, "nowait nowait wait"},
		{"nothing more comes", 4, [][]uint64{{1, 2}, nil, nil}, []uint64{1, 2}, ErrIncomplete, "nowait nowait wait"},
		{"nothing in range", 4, [][]uint64{nil, nil}, nil, nil, "nowait wait"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeStream{last: tc.last, pages: tc.pages}
			var got []uint64
			err := ReadAll(context.Background(), f, jetstream.OrderedConsumerConfig{}, func(m jetstream.Msg) bool {
				md, _ := m.Metadata()
				got = append(got, md.Sequence.Stream)
				return true
			})
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Errorf("err %v, want %v", err, tc.err)
			}
			if !slices.Equal(got, tc.want) || strings.Join(f.calls, " ") != tc.calls {
				t.Errorf("read %v with fetches %q, want %v with %q", got, f.calls, tc.want, tc.calls)
			}
		})
	}
}
