package ticketer_test

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/testsupport"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"
)

const operatorsGuide = "../../docs/operators.md"

// docBlocks are the guide's nats-cli-test blocks.
func docBlocks(t *testing.T) map[string][]string {
	t.Helper()
	out := testsupport.DocBlocks(t, operatorsGuide)
	for _, want := range []string{"inspect", "redrive", "create"} {
		if len(out[want]) == 0 {
			t.Fatalf("%s has no nats-cli-test block %q", operatorsGuide, want)
		}
	}
	return out
}

// runDoc runs the guide's command lines from the repository's root.
func runDoc(t *testing.T, natsBin string, lines []string, vars map[string]string) string {
	t.Helper()
	root, _ := filepath.Abs("../..")
	return testsupport.RunDoc(t, natsBin, root, lines, vars)
}

// The guide's nats commands, run by the real CLI: the deploy files create
// what the services create; inspecting a dead letter shows its reason
// header and JSON body; the CLI re-drive gets the request its ticket.
func TestNATSCLICommandsOfTheGuide(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the nats CLI against an in-process nats-server")
	}
	natsBin := testsupport.NatsCLI(t)
	blocks := docBlocks(t)
	ctx := context.Background()

	// 1. deploy/nats/*.json through the CLI == what the services create.
	byCLI, bySvc := localnats.StartTB(t), localnats.StartTB(t)
	runDoc(t, natsBin, blocks["create"], map[string]string{"NATS_URL": byCLI.URL()})
	svc := connectJS(t, bySvc.URL())
	if err := stream.EnsureAll(ctx, svc, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.EnsureStats(ctx, svc, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateOrUpdateConsumer(ctx, stream.Forms, defaultConfig(t).ConsumerConfig()); err != nil {
		t.Fatal(err)
	}
	cli := connectJS(t, byCLI.URL())
	for _, name := range []string{stream.Forms, stream.DLQ, stream.Stats, "KV_" + stream.TicketsBucket} {
		a, b := streamConfig(t, cli, name), streamConfig(t, svc, name)
		if !reflect.DeepEqual(normalise(t, a), normalise(t, b)) {
			t.Errorf("stream %s from deploy/nats differs from the service's:\n%+v\n%+v", name, normalise(t, a), normalise(t, b))
		}
	}
	ca, cb := consumerConfig(t, cli), consumerConfig(t, svc)
	if !reflect.DeepEqual(normalise(t, ca), normalise(t, cb)) {
		t.Errorf("consumer from deploy/nats differs from the service's:\n%+v\n%+v", normalise(t, ca), normalise(t, cb))
	}
	if _, err := cli.KeyValue(ctx, stream.TicketsBucket); err != nil {
		t.Errorf("the CLI-created bucket is not a KV bucket: %v", err)
	}

	// 2. A dead letter, inspected with the guide's commands.
	h := newHarness(t, jirasandbox.Options{})
	good := ticketertest.SampleEvents(t)[:3]
	bad := ticketertest.BadDepartment(t)
	h.Publish(good...)
	h.Publish(bad)
	stop := h.Start()
	h.WaitFor("3 tickets and 1 dead letter", 20*time.Second, func() bool { return len(h.SB.Issues()) >= 3 && len(h.DLQ()) == 1 && h.Pending() == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	dl := h.DLQ()[0]
	vars := map[string]string{"NATS_URL": h.NS.URL(), "SEQ": fmt.Sprint(dl.Sequence), "HASH": good[0].GetHash()}
	out := runDoc(t, natsBin, blocks["inspect"], vars)
	for _, want := range []string{
		"Cowjacket-Reason: unmappable",                               // stream get / view: the reason header
		"customfield_10073 (Department)",                             // the field, by id and name
		`{"schema_version":1`,                                        // the JSON body
		`"newusername"`,                                              //
		"forms.dlq.ticketer",                                         // stream subjects
		"Information for Consumer FORMS > ticketer",                  // consumer info
		`"state":"created"`,                                          // kv get
		fmt.Sprintf("[%d] Subject: forms.dlq.ticketer", dl.Sequence), // stream view
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the guide's inspect commands do not show %q", want)
		}
	}

	// 3. The CLI re-drive: the event is published to FORMS again and, once
	// Jira has the option, the running ticketer gives it its ticket.
	d := stream.ParseDeadLetter(nats.Header(dl.Header))
	forms, err := h.JS.Stream(ctx, stream.Forms)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := forms.Info(ctx)
	vars["FROM_SEQ"], vars["COUNT"] = fmt.Sprint(d.OrigSeq), "1"
	runDoc(t, natsBin, blocks["redrive"], vars)
	after, _ := forms.Info(ctx)
	if after.State.LastSeq != before.State.LastSeq+1 {
		t.Fatalf("FORMS went from %d to %d messages, want one re-driven", before.State.LastSeq, after.State.LastSeq)
	}
	orig, _ := forms.GetMsg(ctx, d.OrigSeq)
	again, _ := forms.GetMsg(ctx, after.State.LastSeq)
	if ev, err := stream.Unmarshal(again.Data); err != nil || ev.GetHash() != bad.GetHash() || string(orig.Data) != string(again.Data) {
		t.Fatalf("re-driven message is not the original event: %v", err)
	}
	if _, err := h.JS.Consumer(ctx, stream.Forms, "redrive"); err == nil {
		t.Error("the guide's re-drive leaves its consumer behind")
	}
	if err := h.SB.AddOption("customfield_10073", "Astrology"); err != nil {
		t.Fatal(err)
	}
	h.Start()
	h.WaitFor("the re-driven request's ticket", 20*time.Second, func() bool { return h.TicketsFor(bad) == 1 && h.Pending() == 0 })
	h.AssertOneTicketPerHash(append(good, bad))
}

func connectJS(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func streamConfig(t *testing.T, js jetstream.JetStream, name string) jetstream.StreamConfig {
	t.Helper()
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return st.CachedInfo().Config
}

func consumerConfig(t *testing.T, js jetstream.JetStream) jetstream.ConsumerConfig {
	t.Helper()
	c, err := js.Consumer(context.Background(), stream.Forms, stream.TicketerConsumer)
	if err != nil {
		t.Fatalf("consumer %s: %v", stream.TicketerConsumer, err)
	}
	return c.CachedInfo().Config
}
