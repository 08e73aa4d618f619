package e2e

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/capture"
	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/localpg"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/testsupport"
	"github.com/cowjacket/formjira/internal/ticket"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"
)

// pg is the package's one PostgreSQL server; every test gets its own
// database on it.
var pg *localpg.Server

func TestMain(m *testing.M) { os.Exit(localpg.Main(m, &pg)) }

const (
	jiraEmail = "bot@cowjacket.example"
	jiraToken = "e2e-token-not-a-secret"
)

func integration(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("integration test: PostgreSQL, nats-server, Jira sandbox")
	}
}

// mappingFile is a shipped mapping under deploy/, as an absolute path.
func mappingFile(tb testing.TB, name string) string {
	tb.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "deploy", name))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		tb.Fatal(err)
	}
	return p
}

// sandbox starts the Jira sandbox over real HTTP.
func sandbox(tb testing.TB, opts jirasandbox.Options) (*jirasandbox.Server, string) {
	tb.Helper()
	opts.Email, opts.APIToken = jiraEmail, jiraToken
	sb := jirasandbox.New(ticketertest.Realistic(opts))
	srv := httptest.NewServer(sb)
	tb.Cleanup(srv.Close)
	return sb, srv.URL
}

type syncBuffer = testsupport.Buffer

// proc is capture or ticketer running in-process through its Run.
type proc struct {
	name   string
	cancel context.CancelCauseFunc
	done   chan struct{}
	err    error
	logs   *syncBuffer
}

type runFunc func(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error

// start runs run with env (a copy is taken) until stop/abandon or the end
// of the test. On failure the test log gets the tail of the service's log.
func start(tb testing.TB, name string, run runFunc, env map[string]string) *proc {
	tb.Helper()
	env = maps.Clone(env)
	ctx, cancel := context.WithCancelCause(context.Background())
	p := &proc{name: name, cancel: cancel, done: make(chan struct{}), logs: &syncBuffer{}}
	go func() {
		defer close(p.done)
		p.err = run(ctx, func(k string) string { return env[k] }, io.Discard, p.logs)
	}()
	tb.Cleanup(func() {
		p.stop(tb)
		if tb.Failed() {
			tb.Logf("%s log (tail):\n%s", p.name, tail(p.logs.String(), 6000))
		}
	})
	return p
}

// stop is SIGTERM: the service must return within 10 s (design).
func (p *proc) stop(tb testing.TB) {
	tb.Helper()
	p.cancel(nil)
	select {
	case <-p.done:
	case <-time.After(12 * time.Second):
		tb.Errorf("%s did not stop within 12 s", p.name)
	}
}

// abandon is kill -9 for capture: ctx cancelled with capture.ErrAbandon as
// cause, so it neither drains nor confirms.
func (p *proc) abandon(tb testing.TB) {
	tb.Helper()
	p.cancel(capture.ErrAbandon)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		tb.Fatalf("%s did not abandon within 10 s", p.name)
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

func captureEnv(dsn, natsURL string) map[string]string {
	return map[string]string{
		"DATABASE_URL":        dsn,
		"NATS_URL":            natsURL,
		"HTTP_ADDR":           "off",
		"STATUS_INTERVAL":     "1s",
		"HEARTBEAT_INTERVAL":  "1s",
		"STANDBY_POLL":        "200ms",
		"PUBLISH_ACK_TIMEOUT": "2s",
		"LOG_LEVEL":           "info",
	}
}

func ticketerEnv(natsURL, jiraURL, mapping string) map[string]string {
	return map[string]string{
		"NATS_URL":        natsURL,
		"JIRA_URL":        jiraURL,
		"JIRA_EMAIL":      jiraEmail,
		"JIRA_API_TOKEN":  jiraToken,
		"MAPPING_FILE":    mapping,
		"HTTP_ADDR":       "off",
		"CONCURRENCY":     "4",
		"BATCH_WAIT":      "20ms",
		"ACK_WAIT":        "5s",
		"BACKOFF":         "1s,2s",
		"MAX_DELIVER":     "10",
		"JIRA_TIMEOUT":    "3s",
		"RECONCILE_DELAY": "500ms",
		"RETRY_WINDOW":    "10s",
		"LOG_LEVEL":       "info",
	}
}

// database is a fresh database with the form table.
func database(tb testing.TB) string {
	tb.Helper()
	dsn := pg.NewDatabase(tb)
	c := connect(tb, dsn)
	if _, err := c.Exec(context.Background(), form.SchemaSQL); err != nil {
		tb.Fatal(err)
	}
	return dsn
}

func connect(tb testing.TB, dsn string) *pgx.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// walsenderPID is the pid of the walsender streaming the capture slot, 0
// when none.
func walsenderPID(c *pgx.Conn) int32 {
	var pid int32
	err := c.QueryRow(context.Background(), `SELECT a.pid FROM pg_replication_slots s
		JOIN pg_stat_activity a ON a.pid = s.active_pid
		WHERE s.slot_name = 'cowjacket' AND a.backend_type = 'walsender'`).Scan(&pid)
	if err != nil {
		return 0
	}
	return pid
}

func samples(tb testing.TB) []form.Sample {
	tb.Helper()
	s, err := form.Samples()
	if err != nil {
		tb.Fatal(err)
	}
	if len(s) != 200 {
		tb.Fatalf("%d samples, want 200", len(s))
	}
	return s
}

// row is a submission to insert: InsertSQL arguments and the record hash
// capture will compute for it.
type row struct {
	args []any
	hash string
}

func (r row) label() string { return "cowjacket-" + strings.ToLower(r.hash) }

// rowOf is sample s, with Comments replaced when comments is not nil.
func rowOf(s form.Sample, comments *string) row {
	s = form.Sample(cloneSample(s))
	if comments != nil {
		s["Comments"] = comments
	}
	ev := form.NewEvent(s.Columns(), []string{"id"}, nil, nil, time.Now())
	return row{args: s.Args(), hash: ev.GetHash()}
}

func cloneSample(s form.Sample) map[string]*string {
	out := make(map[string]*string, len(s))
	for k, v := range s {
		out[k] = v
	}
	return out
}

// distinctRows are n rows cycling through the samples, each made distinct
// by its Comments (tag and index).
func distinctRows(tb testing.TB, tag string, n int) []row {
	tb.Helper()
	s := samples(tb)
	out := make([]row, n)
	for i := range out {
		c := fmt.Sprintf("%s row %d", tag, i)
		out[i] = rowOf(s[i%len(s)], &c)
	}
	return out
}

var insertSQL = form.InsertSQL("public.form_submissions")

// insert commits one row in its own transaction.
func insert(ctx context.Context, c *pgx.Conn, r row) error {
	_, err := c.Exec(ctx, insertSQL, r.args...)
	return err
}

// ticketsByLabel counts the sandbox's issues per label.
func ticketsByLabel(sb *jirasandbox.Server) map[string]int {
	n := map[string]int{}
	for _, is := range sb.Issues() {
		for _, l := range is.Labels {
			n[l]++
		}
	}
	return n
}

// checkOneTicketEach: every row's hash label on exactly one issue, and no
// other issue at all. For a row with more than one, the issues and what
// the services ps logged about its hash are shown.
func checkOneTicketEach(tb testing.TB, sb *jirasandbox.Server, rows []row, ps ...*proc) {
	tb.Helper()
	want := map[string]bool{}
	for _, r := range rows {
		want[r.label()] = true
	}
	byLabel := ticketsByLabel(sb)
	var missing, doubled []string
	for l := range want {
		switch n := byLabel[l]; {
		case n == 0:
			missing = append(missing, l)
		case n > 1:
			doubled = append(doubled, fmt.Sprintf("%s×%d", l, n))
			explainDouble(tb, sb, l, ps)
		}
	}
	var extra []string
	for _, is := range sb.Issues() {
		if !slices.ContainsFunc(is.Labels, func(l string) bool { return want[l] }) {
			extra = append(extra, is.Key)
		}
	}
	if len(missing)+len(doubled)+len(extra) > 0 {
		tb.Errorf("%d issues for %d distinct rows: %d rows without a ticket %v, %d with more than one %v, %d issues for no row %v",
			len(sb.Issues()), len(want), len(missing), head(missing), len(doubled), head(doubled), len(extra), head(extra))
	}
}

// explainDouble logs the issues carrying label and every line of ps's logs
// naming its hash.
func explainDouble(tb testing.TB, sb *jirasandbox.Server, label string, ps []*proc) {
	tb.Helper()
	for _, is := range sb.IssueByLabel(label) {
		tb.Logf("%s: %s created %s", label, is.Key, is.Created.Format(time.RFC3339Nano))
	}
	hash := strings.TrimPrefix(label, ticket.HashLabelPrefix)
	for _, p := range ps {
		for line := range strings.Lines(p.logs.String()) {
			if strings.Contains(line, hash) {
				tb.Logf("%s: %s", p.name, strings.TrimSpace(line))
			}
		}
	}
}

func head(s []string) []string { return s[:min(len(s), 5)] }

func natsJS(tb testing.TB, url string) jetstream.JetStream {
	tb.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}

// dlq reads every message of FORMS_DLQ.
func dlq(tb testing.TB, js jetstream.JetStream) []*jetstream.RawStreamMsg {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream.DLQ)
	if err != nil {
		return nil
	}
	info, err := st.Info(ctx)
	if err != nil || info.State.Msgs == 0 {
		return nil
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		if m, err := st.GetMsg(ctx, seq); err == nil {
			out = append(out, m)
		}
	}
	return out
}
