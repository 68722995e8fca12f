package main

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/msgroute/gateway/internal/backend"
)

// recorder collects, for one run, what the backends received: per sequence
// number how often and the latency of the first receipt (receipt time minus
// the intended send time stamped by the producer), per instance how many.
// observe is safe for concurrent use and does not allocate.
type recorder struct {
	total     int
	counts    []atomic.Uint32 // by seq
	latency   []atomic.Int64  // ns, by seq, first receipt only
	service   []atomic.Int64  // ns, by seq: that receipt's modelled service time
	instances []atomic.Int64  // by instance index
	distinct  atomic.Int64
	dups      atomic.Int64
	foreign   atomic.Int64 // bodies without a usable seq
	firstRecv atomic.Int64 // unix ns
	lastRecv  atomic.Int64 // unix ns of the last first-receipt
}

func newRecorder(total, instances int) *recorder {
	return &recorder{
		total:     total,
		counts:    make([]atomic.Uint32, total),
		latency:   make([]atomic.Int64, total),
		service:   make([]atomic.Int64, total),
		instances: make([]atomic.Int64, instances),
	}
}

// observe records one message received by instance inst.
func (r *recorder) observe(inst int, m *backend.Message) {
	r.instances[inst].Add(1)
	seq, ts, ok := parseStamp(m.Body)
	if !ok || seq < 0 || seq >= int64(r.total) {
		r.foreign.Add(1)
		return
	}
	if r.counts[seq].Add(1) > 1 {
		r.dups.Add(1)
		return
	}
	at := m.Received.UnixNano()
	r.service[seq].Store(int64(m.ServiceTime))
	r.latency[seq].Store(at - ts)
	r.firstRecv.CompareAndSwap(0, at)
	for last := r.lastRecv.Load(); at > last && !r.lastRecv.CompareAndSwap(last, at); last = r.lastRecv.Load() {
	}
	r.distinct.Add(1)
}

// Distinct is how many different messages have arrived.
func (r *recorder) Distinct() int64 { return r.distinct.Load() }

// latencies returns the sorted latencies of every message received so far:
// until receipt by an instance, and until that instance finished it
// (receipt plus its modelled service time).
func (r *recorder) latencies() (receipt, done []time.Duration) {
	n := r.distinct.Load()
	receipt, done = make([]time.Duration, 0, n), make([]time.Duration, 0, n)
	for i := range r.latency {
		if r.counts[i].Load() > 0 {
			l := time.Duration(r.latency[i].Load())
			receipt = append(receipt, l)
			done = append(done, l+time.Duration(r.service[i].Load()))
		}
	}
	slices.Sort(receipt)
	slices.Sort(done)
	return receipt, done
}

// lost counts sequence numbers never received.
func (r *recorder) lost() int {
	n := 0
	for i := range r.counts {
		if r.counts[i].Load() == 0 {
			n++
		}
	}
	return n
}

// payload builds the message body the producer sends. Fixed layout so that
// parseStamp can read it without a JSON decoder on the receive path.
func payload(buf []byte, seq, ts int64, route int) []byte {
	buf = append(buf[:0], `{"seq":`...)
	buf = appendInt(buf, seq)
	buf = append(buf, `,"ts":`...)
	buf = appendInt(buf, ts)
	buf = append(buf, `,"rk":"r`...)
	buf = appendInt(buf, int64(route))
	buf = append(buf, `","pad":"0123456789abcdef0123456789abcdef"}`...)
	return buf
}

func appendInt(b []byte, v int64) []byte {
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	var d [20]byte
	i := len(d)
	for {
		i--
		d[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(b, d[i:]...)
}

// parseStamp reads seq and ts from a body written by payload.
func parseStamp(b []byte) (seq, ts int64, ok bool) {
	seq, b, ok = intAfter(b, `"seq":`)
	if !ok {
		return 0, 0, false
	}
	ts, _, ok = intAfter(b, `"ts":`)
	return seq, ts, ok
}

func intAfter(b []byte, key string) (int64, []byte, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, nil, false
	}
	b = b[i+len(key):]
	var v int64
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		v = v*10 + int64(b[n]-'0')
		n++
	}
	return v, b[n:], n > 0
}

// dump writes each received message's latency in µs, one line per seq in
// send order (0 for never received), for looking at the tail over time.
func (r *recorder) dump(path string) error {
	var b bytes.Buffer
	for i := range r.latency {
		b.WriteString(strconv.FormatInt(r.latency[i].Load()/1000, 10))
		b.WriteByte('\n')
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
