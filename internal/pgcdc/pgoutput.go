package pgcdc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
)

// The pgoutput messages capture reads on every row (Begin, Insert, Commit)
// are decoded here without allocating: an Insert's values stay slices of
// the received message, used before the next one arrives. Relation
// messages (once per table and session) go through pglogrepl.

var errMalformed = errors.New("malformed pgoutput message")

// begin is a Begin message.
type begin struct {
	finalLSN   pglogrepl.LSN // the transaction's commit record
	commitTime time.Time
	xid        uint32
}

// pgEpoch is where PostgreSQL's timestamps count from.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func pgTime(us int64) time.Time { return pgEpoch.Add(time.Duration(us) * time.Microsecond) }

// lsnString is pglogrepl.LSN.String ("16/B374D848") without fmt: it runs
// once per transaction, and a busy stream's transactions are single rows.
func lsnString(lsn pglogrepl.LSN) string {
	var b [17]byte
	s := appendHex(b[:0], uint32(lsn>>32))
	s = append(s, '/')
	return string(appendHex(s, uint32(lsn)))
}

// appendHex appends v in upper-case hexadecimal, as %X does.
func appendHex(b []byte, v uint32) []byte {
	const digits = "0123456789ABCDEF"
	var t [8]byte
	i := len(t)
	for {
		i--
		t[i] = digits[v&0xf]
		if v >>= 4; v == 0 {
			break
		}
	}
	return append(b, t[i:]...)
}

// parseBegin reads 'B', final LSN, commit time, xid.
func parseBegin(b []byte) (begin, error) {
	if len(b) < 21 {
		return begin{}, fmt.Errorf("%w: begin of %d bytes", errMalformed, len(b))
	}
	return begin{
		finalLSN:   pglogrepl.LSN(binary.BigEndian.Uint64(b[1:])),
		commitTime: pgTime(int64(binary.BigEndian.Uint64(b[9:]))),
		xid:        binary.BigEndian.Uint32(b[17:]),
	}, nil
}

// parseCommit reads 'C', flags, commit LSN, end LSN, commit time and
// returns the end LSN: everything before it has been sent.
func parseCommit(b []byte) (pglogrepl.LSN, error) {
	if len(b) < 26 {
		return 0, fmt.Errorf("%w: commit of %d bytes", errMalformed, len(b))
	}
	return pglogrepl.LSN(binary.BigEndian.Uint64(b[10:])), nil
}

// parseInsert reads 'I', relation id, 'N' and the new tuple into row
// (reusing its storage), every value's Data a slice of b. Lengths are
// checked against the message's size: a corrupt length must not become a
// multi-gigabyte allocation, nor a crash.
func parseInsert(b []byte, row Row) (relID uint32, _ Row, err error) {
	if len(b) < 8 || b[5] != 'N' {
		return 0, row, fmt.Errorf("%w: insert header", errMalformed)
	}
	relID = binary.BigEndian.Uint32(b[1:])
	n := int(binary.BigEndian.Uint16(b[6:]))
	p := 8
	row = row[:0]
	for range n {
		if p >= len(b) {
			return relID, row, fmt.Errorf("%w: insert of %d bytes ends inside value %d", errMalformed, len(b), len(row))
		}
		f := Field{Kind: b[p]}
		p++
		switch f.Kind {
		case pglogrepl.TupleDataTypeText, pglogrepl.TupleDataTypeBinary:
			if p+4 > len(b) {
				return relID, row, fmt.Errorf("%w: insert value %d length", errMalformed, len(row))
			}
			l := int(binary.BigEndian.Uint32(b[p:]))
			p += 4
			if l < 0 || l > len(b)-p {
				return relID, row, fmt.Errorf("%w: insert value %d of %d bytes in a %d-byte message", errMalformed, len(row), l, len(b))
			}
			f.Data = b[p : p+l : p+l]
			p += l
		}
		row = append(row, f)
	}
	return relID, row, nil
}

// parseRelation is pglogrepl's Relation decoder made safe: it indexes
// without bounds checks, and a corrupt message must be an error, not a
// crash.
func parseRelation(b []byte) (m *pglogrepl.RelationMessage, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: relation: %v", errMalformed, p)
		}
	}()
	msg, err := pglogrepl.Parse(b)
	if err != nil {
		return nil, err
	}
	rm, ok := msg.(*pglogrepl.RelationMessage)
	if !ok {
		return nil, fmt.Errorf("%w: not a relation message", errMalformed)
	}
	return rm, nil
}
