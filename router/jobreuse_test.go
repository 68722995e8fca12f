package router

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msgroute/gateway/internal/metrics"
	"github.com/msgroute/gateway/rules"
)

// recordingSender answers 200 and keeps a copy of every request, without
// its Message pointer and start time (a job's own).
type recordingSender struct {
	mu   sync.Mutex
	reqs []Request
}

func (s *recordingSender) Do(r *Request) (Result, error) {
	c := *r
	c.Msg, c.Start = nil, time.Time{}
	s.mu.Lock()
	s.reqs = append(s.reqs, c)
	s.mu.Unlock()
	return Result{Status: 200}, nil
}

// jobTestRouter routes rk "one" to service a, rk "two" to a and b (fan-out),
// and dead-letters everything else; payloads over 64 bytes are too big.
func jobTestRouter(t *testing.T) (*Router, *recordingSender) {
	t.Helper()
	y := `routes:
  - name: ra
    match: 'headers.rk == "one" || headers.rk == "two"'
    service: a
    path: /a
  - name: rb
    match: 'headers.rk == "two" && body.n > 1'
    service: b
    path: /b
default:
  action: dlq
`
	set := testRules(t, y)
	bal := testBalancer(t, 1, "a", "b")
	snd := &recordingSender{}
	r, err := New(Config{Streams: []string{"s"}, DLQStream: "dlq", MaxPayloadBytes: 64,
		Logger: quietLogger()},
		Deps{Source: benchSource{}, Settler: &benchSettler{}, Publisher: benchPublisher{}, Picker: bal, Sender: snd,
			Rules: func() *rules.Set { return set }, Metrics: metrics.New()})
	if err != nil {
		t.Fatal(err)
	}
	return r, snd
}

// TestRecycledJobAgreesWithFresh: a job recycled after any other entry
// (its Message, request scratch and inline buffers left as they were)
// prepares and delivers each kind of entry exactly as a new job does:
// one route, fan-out, no route, attributes or none, reply_to and trace
// context, a replayed dead letter, a deleted entry, a payload too big.
func TestRecycledJobAgreesWithFresh(t *testing.T) {
	r, snd := jobTestRouter(t)
	entries := []Entry{
		{Stream: "s", ID: "1-0", Deliveries: 1, Fields: map[string]string{"payload": `{"n":2}`, "rk": "one", "x-extra": "1"}},
		{Stream: "s", ID: "1-1", Deliveries: 2, Fields: map[string]string{"payload": `{"n":2}`, "rk": "two",
			"reply_to": "gateway:reply:x", "correlation_id": "c", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}},
		{Stream: "s", ID: "1-2", Deliveries: 1, Fields: map[string]string{"payload": `{"n":0}`, "rk": "none"}},
		{Stream: "s", ID: "1-3", Deliveries: 1, Fields: map[string]string{"payload": `{"n":5}`}},
		{Stream: "s", ID: "1-4", Deliveries: 3, Fields: map[string]string{"payload": `{"n":5}`, "rk": "two",
			rules.FieldReplayOf: "0-9", rules.FieldReplayStream: "orig", rules.FieldReplayRoute: "rb"}},
		{Stream: "s", ID: "1-5", Deliveries: 1},
		{Stream: "s", ID: "1-6", Deliveries: 1, Fields: map[string]string{"payload": strings.Repeat("x", 65), "rk": "one"}},
		{Stream: "s", ID: "1-7", Deliveries: 1, Fields: map[string]string{"payload": "", "content_type": "text/plain", "rk": "one"}},
	}
	ctx := context.Background()
	run := func(j *job) (jobState, rules.Message, verdict, []Request) {
		snd.reqs = nil
		r.match(j)
		st := j.jobState
		var msg rules.Message
		if j.msg != nil {
			if j.msg != &j.msgBuf {
				t.Fatalf("entry %s: msg is not the job's own", j.e.ID)
			}
			msg = exported(*j.msg)
			st.msg = nil
		}
		v := r.processRoutes(ctx, j)
		return st, msg, v, snd.reqs
	}
	for _, prev := range entries {
		for _, cur := range entries {
			used := &job{}
			used.reset(&prev)
			run(used)
			used.sampled, used.since, used.stamp, used.trace = true, time.Now(), time.Now(), ctx
			used.reset(&cur)
			fresh := &job{}
			fresh.reset(&cur)
			wantSt, wantMsg, wantV, wantReqs := run(fresh)
			gotSt, gotMsg, gotV, gotReqs := run(used)
			name := "after " + prev.ID + ", " + cur.ID
			if !reflect.DeepEqual(gotSt, wantSt) {
				t.Errorf("%s: state %+v, want %+v", name, gotSt, wantSt)
			}
			if !reflect.DeepEqual(gotMsg, wantMsg) {
				t.Errorf("%s: message %+v, want %+v", name, gotMsg, wantMsg)
			}
			if gotV != wantV || !reflect.DeepEqual(gotReqs, wantReqs) {
				t.Errorf("%s: verdict %+v, requests %+v; want %+v, %+v", name, gotV, gotReqs, wantV, wantReqs)
			}
		}
	}
}

// exported is m with only its exported fields (the attribute map it keeps
// for reuse is not part of the message).
func exported(m rules.Message) rules.Message {
	var out rules.Message
	src, dst := reflect.ValueOf(m), reflect.ValueOf(&out).Elem()
	for i := range src.NumField() {
		if src.Type().Field(i).IsExported() {
			dst.Field(i).Set(src.Field(i))
		}
	}
	return out
}
