package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/config"
	"github.com/cowjacket/formjira/internal/natsconn"
	"github.com/cowjacket/formjira/internal/pgcdc"
	"github.com/cowjacket/formjira/internal/stream"
)

// Status prints the slot, the publication, the confirmed LSN, lag and the
// FORMS stream for operators. Everything it can read is printed; the error
// names what it could not.
func Status(ctx context.Context, cfg Config, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	defer tw.Flush()
	var errs []error

	fmt.Fprintf(tw, "database\t%s\n", config.Redact(cfg.DatabaseURL))
	fmt.Fprintf(tw, "table\t%s\n", cfg.Table)
	conn, err := pgcdc.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		fmt.Fprintf(tw, "postgres\tunreachable: %v\n", err)
		errs = append(errs, fmt.Errorf("postgres: %w", err))
	} else {
		defer conn.Close(context.Background())
		s, err := pgcdc.ReadSlot(ctx, conn, cfg.Slot)
		switch {
		case err != nil:
			fmt.Fprintf(tw, "slot %s\terror: %v\n", cfg.Slot, err)
			errs = append(errs, err)
		case !s.Exists:
			fmt.Fprintf(tw, "slot %s\tabsent (capture creates it at start-up)\n", cfg.Slot)
		default:
			active := "inactive (no capture streaming)"
			if s.Active {
				active = fmt.Sprintf("active, pid %d", s.ActivePID)
			}
			fmt.Fprintf(tw, "slot %s\t%s\n", cfg.Slot, active)
			fmt.Fprintf(tw, "confirmed_flush_lsn\t%s\n", s.Confirmed)
			fmt.Fprintf(tw, "lag\t%d bytes (current WAL - confirmed)\n", s.LagBytes)
			fmt.Fprintf(tw, "retained WAL\t%d bytes (current WAL - restart_lsn)\n", s.RetainedBytes)
			fmt.Fprintf(tw, "wal_status\t%s\n", s.WALStatus)
			switch s.WALStatus {
			case "lost":
				errs = append(errs, pgcdc.LostSlot(cfg.Slot, s.Confirmed))
			case "unreserved":
				errs = append(errs, fmt.Errorf("replication slot %s is about to be invalidated (wal_status unreserved: over max_slot_wal_keep_size): capture must catch up now", cfg.Slot))
			}
		}
		pub, err := pgcdc.ReadPublication(ctx, conn, cfg.Publication)
		switch {
		case err != nil:
			fmt.Fprintf(tw, "publication %s\terror: %v\n", cfg.Publication, err)
			errs = append(errs, err)
		case !pub.Exists:
			fmt.Fprintf(tw, "publication %s\tabsent (capture creates it at start-up)\n", cfg.Publication)
		default:
			fmt.Fprintf(tw, "publication %s\t%s\n", cfg.Publication, strings.Join(pub.Tables, ", "))
		}
	}

	nc, js, err := natsconn.JetStream(ctx, cfg.NATS, "cowjacket-capture-status", slog.New(slog.DiscardHandler),
		nats.Timeout(3*time.Second), nats.CustomInboxPrefix(natsconn.OperatorInbox))
	if err != nil {
		fmt.Fprintf(tw, "stream %s\tunavailable: %v\n", stream.Forms, err)
		return errors.Join(append(errs, fmt.Errorf("stream %s: %w", stream.Forms, err))...)
	}
	defer nc.Close()
	var info *jetstream.StreamInfo
	st, err := js.Stream(ctx, stream.Forms)
	if err == nil {
		info, err = st.Info(ctx)
	}
	if err != nil {
		fmt.Fprintf(tw, "stream %s\tunavailable: %v\n", stream.Forms, err)
		errs = append(errs, fmt.Errorf("stream %s: %w", stream.Forms, err))
	} else {
		s := info.State
		fmt.Fprintf(tw, "stream %s\t%d messages, %d bytes, first seq %d, last seq %d, %d consumers\n",
			stream.Forms, s.Msgs, s.Bytes, s.FirstSeq, s.LastSeq, s.Consumers)
	}
	if err := printCaptures(ctx, tw, js); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// printCaptures prints the running captures and their roles, from what
// each publishes in FORMS_CAPTURE.
func printCaptures(ctx context.Context, w io.Writer, js jetstream.JetStream) error {
	caps, err := stream.ReadCaptureStatus(ctx, js)
	if err != nil {
		fmt.Fprintf(w, "captures\tunavailable: %v\n", err)
		return err
	}
	if len(caps) == 0 {
		fmt.Fprintf(w, "captures\tnone running (no status in KV bucket %s)\n", stream.CaptureStatusBucket)
		return nil
	}
	now := time.Now()
	ago := func(t time.Time) string { return now.Sub(t).Round(time.Second).String() + " ago" }
	for _, c := range caps {
		line := fmt.Sprintf("%s, %s; %d rows published", c.Role, c.State, c.RowsPublished)
		if c.ConfirmedLSN != "" {
			line += fmt.Sprintf("; slot confirmed to %s (moved %s), lag %d bytes", c.ConfirmedLSN, ago(c.ConfirmedAt), c.SlotLagBytes)
		}
		if c.LastError != "" {
			line += fmt.Sprintf("; last error %s: %s", ago(c.LastErrorAt), c.LastError)
		}
		fmt.Fprintf(w, "capture %s\t%s; updated %s\n", c.Instance, line, ago(c.UpdatedAt))
	}
	return nil
}
