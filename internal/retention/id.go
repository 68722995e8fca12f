package retention

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// streamID is a parsed Redis stream entry ID: milliseconds and sequence.
type streamID struct{ ms, seq uint64 }

// maxID is above every real entry ID: the bound when nothing holds a
// stream back.
var maxID = streamID{math.MaxUint64, math.MaxUint64}

func parseID(s string) (streamID, error) {
	msPart, seqPart, ok := strings.Cut(s, "-")
	ms, err := strconv.ParseUint(msPart, 10, 64)
	if err != nil {
		return streamID{}, fmt.Errorf("stream id %q: %w", s, err)
	}
	if !ok {
		return streamID{ms: ms}, nil
	}
	seq, err := strconv.ParseUint(seqPart, 10, 64)
	if err != nil {
		return streamID{}, fmt.Errorf("stream id %q: %w", s, err)
	}
	return streamID{ms: ms, seq: seq}, nil
}

func (a streamID) String() string {
	return strconv.FormatUint(a.ms, 10) + "-" + strconv.FormatUint(a.seq, 10)
}

func (a streamID) less(b streamID) bool {
	return a.ms < b.ms || (a.ms == b.ms && a.seq < b.seq)
}

func minID(a, b streamID) streamID {
	if b.less(a) {
		return b
	}
	return a
}

// next is the smallest ID after a.
func (a streamID) next() streamID {
	if a.seq == math.MaxUint64 {
		return streamID{ms: a.ms + 1}
	}
	return streamID{ms: a.ms, seq: a.seq + 1}
}

// age is how long before now the entry was added (its ID's time); 0 for
// IDs in the future.
func (a streamID) age(now time.Time) time.Duration {
	d := now.UnixMilli() - int64(a.ms)
	if d < 0 || a.ms > math.MaxInt64 {
		return 0
	}
	return time.Duration(d) * time.Millisecond
}

// idAt is the first ID of millisecond t: MINID idAt(t) trims entries
// added before t.
func idAt(t time.Time) streamID {
	ms := t.UnixMilli()
	if ms < 0 {
		ms = 0
	}
	return streamID{ms: uint64(ms)}
}
