package pgcdc

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/jackc/pglogrepl"
)

// parse is pglogrepl.Parse made safe: its decoders index without bounds
// checks, and a corrupt message must be an error, not a crash.
func parse(b []byte) (m pglogrepl.Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed pgoutput message: %v", p)
		}
	}()
	if len(b) == 0 {
		return nil, errors.New("empty pgoutput message")
	}
	switch pglogrepl.MessageType(b[0]) {
	case pglogrepl.MessageTypeInsert:
		if err := checkInsert(b); err != nil {
			return nil, err
		}
	case pglogrepl.MessageTypeRelation, pglogrepl.MessageTypeBegin, pglogrepl.MessageTypeCommit:
	default:
		// Not needed (updates, deletes, truncates, types, origins, logical
		// messages): skip decoding what is ignored anyway.
		return ignored{}, nil
	}
	return pglogrepl.Parse(b)
}

type ignored struct{ pglogrepl.Message }

// checkInsert verifies the value lengths of an Insert message against its
// size before pglogrepl allocates them: a corrupt length must not become a
// multi-gigabyte allocation.
func checkInsert(b []byte) error {
	bad := errors.New("malformed pgoutput insert message")
	if len(b) < 8 {
		return bad
	}
	p := 6 // 'I', relation id, 'N'
	n := int(binary.BigEndian.Uint16(b[p:]))
	p += 2
	for range n {
		if p >= len(b) {
			return bad
		}
		kind := b[p]
		p++
		if kind == pglogrepl.TupleDataTypeText || kind == pglogrepl.TupleDataTypeBinary {
			if p+4 > len(b) {
				return bad
			}
			l := int(binary.BigEndian.Uint32(b[p:]))
			p += 4
			if l > len(b)-p {
				return bad
			}
			p += l
		}
	}
	return nil
}
