package pgcdc

import (
	"encoding/binary"
	"testing"

	"github.com/jackc/pglogrepl"
)

// beginMsg and commitMsg are pgoutput's Begin and Commit messages; every
// field a different value, so a misread offset shows.
func beginMsg(final, at uint64, xid uint32) []byte {
	b := []byte{'B'}
	b = binary.BigEndian.AppendUint64(b, final)
	b = binary.BigEndian.AppendUint64(b, at)
	return binary.BigEndian.AppendUint32(b, xid)
}

func commitMsg(commit, end, at uint64) []byte {
	b := []byte{'C', 0}
	b = binary.BigEndian.AppendUint64(b, commit)
	b = binary.BigEndian.AppendUint64(b, end)
	return binary.BigEndian.AppendUint64(b, at)
}

// The zero-copy Begin and Commit decoders read what pglogrepl's read: the
// commit's end LSN is what the slot is confirmed to.
func FuzzBeginCommit(f *testing.F) {
	f.Add(beginMsg(0x0102030405060708, 0x0000a1a2a3a4a5a6, 0x21222324))
	f.Add(commitMsg(0x3132333435363738, 0x4142434445464748, 0x0000b1b2b3b4b5b6))
	f.Add(commitMsg(0x16b3748, 0x16b3778, 0x2c8b3a1d6f0e1))
	f.Fuzz(func(t *testing.T, wire []byte) {
		if len(wire) == 0 {
			return
		}
		switch wire[0] {
		case 'B':
			got, err := parseBegin(wire)
			if err != nil {
				return
			}
			ref, rerr := pglogrepl.Parse(wire)
			m, ok := ref.(*pglogrepl.BeginMessage)
			if rerr != nil || !ok {
				t.Fatalf("parseBegin read %d bytes pglogrepl refuses: %v", len(wire), rerr)
			}
			// Times beyond ±250 years of 2000 (where nanoseconds since 1970 overflow) are
			// no commit's.
			us := int64(binary.BigEndian.Uint64(wire[9:]))
			sameTime := got.commitTime.Equal(m.CommitTime) || us > 8e15 || us < -8e15
			if got.finalLSN != m.FinalLSN || !sameTime || got.xid != m.Xid {
				t.Fatalf("parseBegin %+v; pglogrepl %+v", got, m)
			}
		case 'C':
			end, err := parseCommit(wire)
			if err != nil {
				return
			}
			ref, rerr := pglogrepl.Parse(wire)
			m, ok := ref.(*pglogrepl.CommitMessage)
			if rerr != nil || !ok {
				t.Fatalf("parseCommit read %d bytes pglogrepl refuses: %v", len(wire), rerr)
			}
			if end != m.TransactionEndLSN {
				t.Fatalf("parseCommit end %v; pglogrepl %v", end, m.TransactionEndLSN)
			}
		}
	})
}

// lsnString writes what pglogrepl's LSN.String (fmt's %X/%X) writes, the
// form the event's commit_lsn has always had.
func FuzzLSNString(f *testing.F) {
	for _, v := range []uint64{0, 1, 0xf, 0x10, 0x16_B374D848, 0xffffffff, 0x1_00000000, 0xffffffff_ffffffff, 0xA0000000_0000000B} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v uint64) {
		if got, want := lsnString(pglogrepl.LSN(v)), pglogrepl.LSN(v).String(); got != want {
			t.Errorf("lsnString(%#x) = %q, want %q", v, got, want)
		}
	})
}
