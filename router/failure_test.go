package router

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/msgroute/gateway/internal/metrics"
	"github.com/msgroute/gateway/rules"
)

// recordingPublisher records the streams written to, in order, and fails
// the write to failOn.
type recordingPublisher struct {
	failOn string
	calls  []string
}

func (p *recordingPublisher) Add(_ context.Context, stream string, _ int64, _ []string) (string, error) {
	p.calls = append(p.calls, stream)
	if stream == p.failOn {
		return "", errors.New("write refused")
	}
	return "1-1", nil
}

type statusSender int

func (s statusSender) Do(*Request) (Result, error) { return Result{Status: int(s)}, nil }

// TestDeadLetterWritesInOrder: a permanently failed route with on_failure
// and reply_to writes the failure event, then the dead letter, then the
// reply; a failed write stops there and leaves the entry unacked, so the
// next delivery runs the sequence again and nothing is skipped.
func TestDeadLetterWritesInOrder(t *testing.T) {
	set := testRules(t, "routes:\n  - {name: pay, service: svc, on_failure: comp}\n")
	bal := testBalancer(t, 1, "svc")
	all := []string{"comp", "gateway:dlq", "replies"}
	tests := []struct {
		failOn    string
		wantCalls []string
		wantAck   bool
	}{
		{"", all, true},
		{"comp", all[:1], false},
		{"gateway:dlq", all[:2], false},
		{"replies", all, false},
	}
	for _, tt := range tests {
		pub := &recordingPublisher{failOn: tt.failOn}
		r, err := New(Config{Streams: []string{"s"}, DLQStream: "gateway:dlq", Logger: quietLogger()},
			Deps{Source: benchSource{}, Settler: &benchSettler{}, Publisher: pub, Picker: bal, Sender: statusSender(404),
				Rules: func() *rules.Set { return set }, Metrics: metrics.New()})
		if err != nil {
			t.Fatal(err)
		}
		e := Entry{Stream: "s", ID: "1-0", Deliveries: 1, Fields: map[string]string{"payload": "{}", "reply_to": "replies"}}
		j := r.prepare(&e)
		if !admit(context.Background(), j.sems) { // as the reader does before handing the job on
			t.Fatal("admission refused")
		}
		v := r.process(context.Background(), j)
		if !slices.Equal(pub.calls, tt.wantCalls) || v.ack != tt.wantAck {
			t.Errorf("write to %q failing: writes %v, ack %v; want %v, ack %v", tt.failOn, pub.calls, v.ack, tt.wantCalls, tt.wantAck)
		}
	}
}
