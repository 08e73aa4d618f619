package capture

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/capture/capturetest"
	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/pgcdc"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/testsupport"
)

// TestReplicaIdentityDoesNotChangeTheHash: pgoutput marks the replica
// identity as the key, which is every column under REPLICA IDENTITY FULL
// and none under NOTHING. The hash leaves out the primary key whatever the
// identity: ten distinct rows are ten events (under FULL they once all
// hashed alike and nine were dropped as duplicates), each naming the
// primary key, and a backfill finds every one already there.
func TestReplicaIdentityDoesNotChangeTheHash(t *testing.T) {
	for _, identity := range []string{"FULL", "NOTHING", "USING INDEX form_submissions_id_email"} {
		t.Run(identity, func(t *testing.T) {
			e := newEnv(t)
			e.Exec("CREATE UNIQUE INDEX form_submissions_id_email ON public.form_submissions (id, emailaddress)")
			e.Exec("ALTER TABLE public.form_submissions ALTER COLUMN emailaddress SET NOT NULL")
			e.Exec("ALTER TABLE public.form_submissions REPLICA IDENTITY " + identity)
			r := e.Start()
			c := e.Conn()
			e.WaitStreaming(c)
			ctx := context.Background()
			if err := insertSamples(ctx, c, samples(t)[:10], nil); err != nil {
				t.Fatal(err)
			}
			js := e.JS()
			waitMsgs(t, js, stream.Forms, 10, 20*time.Second)
			for _, m := range readAll(t, js, stream.Forms) {
				if pk := m.Ev.GetSource().GetPrimaryKey(); len(pk) != 1 || pk[0].GetName() != "id" || slices.Contains(m.Ev.GetHashFields(), "id") {
					t.Errorf("seq %d: primary key %v, hash fields %v; want id, left out of the hash", m.Seq, pk, m.Ev.GetHashFields())
				}
			}
			r.Stop(t)
			if res := backfill(ctx, t, e); res.Published != 0 || res.Duplicates != 10 {
				t.Errorf("backfill %+v; want the 10 rows found already there (same hashes)", res)
			}
		})
	}
}

// TestPrimaryKeyChangedWhileStreaming: the key left out of the hash
// follows a primary key renamed or added while capture streams, at its
// place in the WAL: a double click after the change is still one event.
func TestPrimaryKeyChangedWhileStreaming(t *testing.T) {
	for _, tc := range []struct{ name, before, during string }{
		{"renamed", "", "ALTER TABLE public.form_submissions RENAME COLUMN id TO form_id"},
		{"added", "ALTER TABLE public.form_submissions DROP CONSTRAINT form_submissions_pkey", "ALTER TABLE public.form_submissions ADD PRIMARY KEY (id)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.before != "" {
				e.Exec(tc.before)
			}
			e.Start()
			c := e.Conn()
			e.WaitStreaming(c)
			ctx := context.Background()
			js := e.JS()
			s := samples(t)
			if err := insertSamples(ctx, c, s[5:6], nil); err != nil {
				t.Fatal(err)
			}
			waitMsgs(t, js, stream.Forms, 1, 20*time.Second)
			e.Exec(tc.during)
			// A double click, another row, then a last one: FORMS is in
			// order, so once 4 events are there, the last is the last row
			// only if the double click was one.
			if err := insertSamples(ctx, c, []form.Sample{s[0], s[0], s[1], s[2]}, nil); err != nil {
				t.Fatal(err)
			}
			waitMsgs(t, js, stream.Forms, 4, 20*time.Second)
			ms := readAll(t, js, stream.Forms)
			if last := form.String(ms[3].Ev, "newusername"); len(ms) != 4 || last != *s[2]["newusername"] {
				t.Errorf("FORMS holds %d events, the 4th from %q; want 4, the last row's (%q): the double click collapsed", len(ms), last, *s[2]["newusername"])
			}
		})
	}
}

// TestGeneratedColumnHashesAsStreamed: pgoutput leaves a stored generated
// column out, so backfill does too: the rows it reads again are the
// streamed ones (same hash), not new requests.
func TestGeneratedColumnHashesAsStreamed(t *testing.T) {
	e := newEnv(t)
	e.Exec(`ALTER TABLE public.form_submissions ADD COLUMN shouted text GENERATED ALWAYS AS (upper(newusername)) STORED`)
	r := e.Start()
	c := e.Conn()
	e.WaitStreaming(c)
	ctx := context.Background()
	if err := insertSamples(ctx, c, samples(t)[:5], nil); err != nil {
		t.Fatal(err)
	}
	js := e.JS()
	waitMsgs(t, js, stream.Forms, 5, 20*time.Second)
	r.Stop(t)
	if res := backfill(ctx, t, e); res.Published != 0 || res.Duplicates != 5 {
		t.Errorf("backfill %+v; want the 5 streamed rows found already there", res)
	}
	if n := streamMsgs(ctx, js, stream.Forms); n != 5 {
		t.Errorf("FORMS holds %d, want 5", n)
	}
}

// TestPartitionedTable: a partitioned FORM_TABLE is published as itself
// (capture makes its publication with publish_via_partition_root), so rows
// in its partitions are captured; a publication made without it is refused
// at start with the fix.
func TestPartitionedTable(t *testing.T) {
	e := newEnv(t)
	e.Exec(`CREATE TABLE public.pforms (id bigint GENERATED ALWAYS AS IDENTITY, note text, createdat date NOT NULL DEFAULT current_date,
		PRIMARY KEY (id, createdat)) PARTITION BY RANGE (createdat)`)
	e.Exec(`CREATE TABLE public.pforms_all PARTITION OF public.pforms DEFAULT`)
	e.Exec(`GRANT SELECT ON public.pforms TO ` + capturetest.Role)
	e.Exec(`CREATE PUBLICATION ppub_leaves FOR TABLE public.pforms WITH (publish = 'insert')`)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	leaves := e.With(t, map[string]string{"FORM_TABLE": "public.pforms", "PUBLICATION_NAME": "ppub_leaves", "SLOT_NAME": "pslot_leaves"})
	err := Run(ctx, leaves.Getenv, io.Discard, &testsupport.Buffer{})
	if !errors.Is(err, pgcdc.ErrStartup) || !strings.Contains(err.Error(), "publish_via_partition_root = true") {
		t.Errorf("a publication of the partitions: %v; want a start-up error naming publish_via_partition_root", err)
	}

	// Run as the table's owner, capture makes the publication itself.
	e = e.With(t, map[string]string{"FORM_TABLE": "public.pforms", "PUBLICATION_NAME": "ppub", "DATABASE_URL": e.DSN})
	e.Start()
	c := e.Conn()
	e.WaitStreaming(c)
	for i := range 3 {
		e.Exec(`INSERT INTO public.pforms (note) VALUES ($1)`, strings.Repeat("n", i+1))
	}
	js := e.JS()
	waitMsgs(t, js, stream.Forms, 3, 20*time.Second)
	for _, m := range readAll(t, js, stream.Forms) {
		if src := m.Ev.GetSource(); src.GetTable() != "pforms" || len(src.GetPrimaryKey()) != 2 {
			t.Errorf("seq %d from %s.%s, primary key %v; want pforms keyed by (id, createdat)", m.Seq, src.GetSchema(), src.GetTable(), src.GetPrimaryKey())
		}
	}
}

// TestSlotOlderThanPublication: WAL written before the publication existed
// cannot be decoded, on any try: capture stops with one line saying how to
// start again, instead of reconnecting for ever.
func TestSlotOlderThanPublication(t *testing.T) {
	e := newEnv(t)
	e.Exec("DROP PUBLICATION cowjacket")
	e.Exec("SELECT pg_create_logical_replication_slot('cowjacket', 'pgoutput')")
	c := e.Conn()
	ctx := context.Background()
	if err := insertSamples(ctx, c, samples(t)[:2], nil); err != nil {
		t.Fatal(err)
	}
	e.Exec("CREATE PUBLICATION cowjacket FOR TABLE public.form_submissions WITH (publish = 'insert')")
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := Run(rctx, e.Getenv, io.Discard, &testsupport.Buffer{})
	if !errors.Is(err, pgcdc.ErrStartup) || !strings.Contains(err.Error(), "pg_drop_replication_slot('cowjacket')") || !strings.Contains(err.Error(), "capture backfill") {
		t.Errorf("Run = %v; want a start-up error saying to drop the slot and backfill", err)
	}
}

// TestDeletedStreamIsMadeAgain: FORMS deleted under a running capture
// (or lost with a server's state) is made again, and the rows committed
// meanwhile arrive, without a restart.
func TestDeletedStreamIsMadeAgain(t *testing.T) {
	e := newEnv(t)
	r := e.Start()
	c := e.Conn()
	e.WaitStreaming(c)
	ctx := context.Background()
	js := e.JS()
	if err := insertSamples(ctx, c, samples(t)[:1], nil); err != nil {
		t.Fatal(err)
	}
	waitMsgs(t, js, stream.Forms, 1, 20*time.Second)
	if err := js.DeleteStream(ctx, stream.Forms); err != nil {
		t.Fatal(err)
	}
	if err := insertSamples(ctx, c, samples(t)[1:3], nil); err != nil {
		t.Fatal(err)
	}
	waitMsgs(t, js, stream.Forms, 2, 30*time.Second)
	if l := r.Logs.String(); !strings.Contains(l, "made again") {
		t.Errorf("no log line says the stream was made again:\n%s", l)
	}
}

// TestRowOverFormsMaxMsgSize: an operator's max_msg_size on FORMS refuses
// a row on every try; it is dead-lettered as too_large (as a row over the
// server's max_payload is) and the rows after it flow.
func TestRowOverFormsMaxMsgSize(t *testing.T) {
	e := newEnv(t)
	e.Start()
	c := e.Conn()
	e.WaitStreaming(c)
	ctx := context.Background()
	js := e.JS()
	s, err := js.Stream(ctx, stream.Forms)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxMsgSize = 4096
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := insertSamples(ctx, c, samples(t)[:1], func(int) string { return strings.Repeat("long comment ", 500) }); err != nil {
		t.Fatal(err)
	}
	if err := insertSamples(ctx, c, samples(t)[1:3], nil); err != nil {
		t.Fatal(err)
	}
	waitMsgs(t, js, stream.Forms, 2, 20*time.Second)
	waitMsgs(t, js, stream.DLQ, 1, 20*time.Second)
	d := stream.ParseDeadLetter(readAll(t, js, stream.DLQ)[0].Hdr)
	if d.Reason != stream.ReasonTooLarge || !strings.Contains(d.Error, "stream FORMS refused the") {
		t.Errorf("dead letter %+v; want %s saying FORMS refused it", d, stream.ReasonTooLarge)
	}
}

// TestBackfillKeepsTheServicesHashAndStreams: a backfill run from a shell
// without the service's HASH_FIELDS would publish every row again under a
// new hash (a second ticket each): it is refused, naming both settings.
// With the service's, every row is a duplicate. And a
// backfill without the service's DUPLICATE_WINDOW leaves FORMS as the
// service set it.
func TestBackfillKeepsTheServicesHashAndStreams(t *testing.T) {
	svc := newEnv(t).With(t, map[string]string{"HASH_FIELDS": "emailaddress,newusername,createdat", "DUPLICATE_WINDOW": "72h"})
	r := svc.Start()
	c := svc.Conn()
	svc.WaitStreaming(c)
	ctx := context.Background()
	if err := insertSamples(ctx, c, samples(t)[:5], nil); err != nil {
		t.Fatal(err)
	}
	js := svc.JS()
	waitMsgs(t, js, stream.Forms, 5, 20*time.Second)
	r.Stop(t)

	shell := svc.With(t, map[string]string{"HASH_FIELDS": "", "DUPLICATE_WINDOW": ""})
	cfg, err := LoadConfig(shell.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Backfill(ctx, cfg, time.Time{}, slog.New(slog.DiscardHandler))
	if !errors.Is(err, pgcdc.ErrStartup) || !strings.Contains(err.Error(), "hash over createdat,emailaddress,newusername") {
		t.Errorf("backfill with another HASH_FIELDS: %v; want it refused naming the service's", err)
	}
	if n := streamMsgs(ctx, js, stream.Forms); n != 5 {
		t.Errorf("FORMS holds %d after the refused backfill, want 5", n)
	}
	st, err := js.Stream(ctx, stream.Forms)
	if err != nil {
		t.Fatal(err)
	}
	if d := st.CachedInfo().Config.Duplicates; d != 72*time.Hour {
		t.Errorf("FORMS's duplicate window %v after a backfill without DUPLICATE_WINDOW, want the service's 72h", d)
	}

	if res := backfill(ctx, t, svc); res.Published != 0 || res.Duplicates != 5 {
		t.Errorf("backfill with the service's HASH_FIELDS: %+v; want 5 duplicates", res)
	}
}

// TestBackfillAfterAddColumn: with the default HASH_FIELDS (every non-key
// column) a column added since the last event is NULL in older rows, so
// they hash alike: no difference, every row a duplicate.
func TestBackfillAfterAddColumn(t *testing.T) {
	def := newEnv(t)
	r := def.Start()
	c := def.Conn()
	def.WaitStreaming(c)
	ctx := context.Background()
	if err := insertSamples(ctx, c, samples(t)[:3], nil); err != nil {
		t.Fatal(err)
	}
	waitMsgs(t, def.JS(), stream.Forms, 3, 20*time.Second)
	r.Stop(t)
	def.Exec(`ALTER TABLE public.form_submissions ADD COLUMN priority int`)
	if res := backfill(ctx, t, def); res.Published != 0 || res.Duplicates != 3 {
		t.Errorf("default HASH_FIELDS, a column added since: %+v; want 3 duplicates", res)
	}
	// A column added with a default gives the old rows a value, so they
	// would hash anew: a whole-table backfill is refused, naming it;
	// --since (after the ADD) is the way past.
	def.Exec(`ALTER TABLE public.form_submissions ADD COLUMN score int NOT NULL DEFAULT 0`)
	cfg, err := LoadConfig(def.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Backfill(ctx, cfg, time.Time{}, slog.New(slog.DiscardHandler))
	if !errors.Is(err, pgcdc.ErrStartup) || !strings.Contains(err.Error(), "HASH_FIELDS: score was added to public.form_submissions with a default") ||
		!strings.Contains(err.Error(), "--since") {
		t.Fatalf("backfill after ADD COLUMN … DEFAULT: %v; want it refused naming score and --since", err)
	}
	if res, err := Backfill(ctx, cfg, time.Now(), slog.New(slog.DiscardHandler)); err != nil || res.Published != 0 {
		t.Errorf("backfill --since after the ADD: %+v, %v", res, err)
	}
	// A captured row with the column does not make the old ones safe.
	if err := insertSamples(ctx, c, samples(t)[3:4], nil); err != nil {
		t.Fatal(err)
	}
	r = def.Start()
	waitMsgs(t, def.JS(), stream.Forms, 4, 20*time.Second)
	r.Stop(t)
	if _, err := Backfill(ctx, cfg, time.Time{}, slog.New(slog.DiscardHandler)); !errors.Is(err, pgcdc.ErrStartup) {
		t.Errorf("whole-table backfill once a row with the column was captured: %v; want it still refused", err)
	}
}

// TestPipeInAColumnNameRefused: "|" separates a hash field's old and new
// names, so a column named with one could not be hashed by its name:
// capture refuses to start, naming it, rather than hash it otherwise.
func TestPipeInAColumnNameRefused(t *testing.T) {
	e := newEnv(t)
	e.Exec(`ALTER TABLE public.form_submissions ADD COLUMN "x|y" text`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := Run(ctx, e.Getenv, io.Discard, io.Discard)
	if !errors.Is(err, pgcdc.ErrStartup) || !strings.Contains(err.Error(), `column "x|y" of public.form_submissions has a '|' in its name`) {
		t.Errorf("capture on a table with a column x|y: %v", err)
	}
}
