package rules

import (
	"reflect"
	"testing"
)

func TestNewMessage(t *testing.T) {
	tests := []struct {
		name   string
		fields map[string]string
		want   Message
	}{
		{"defaults", map[string]string{"payload": "{}"},
			Message{Stream: "s", ID: "1-0", Payload: "{}", ContentType: DefaultContentType, CorrelationID: "1-0", Deliveries: 2}},
		{"reserved fields and attributes", map[string]string{
			"payload": "x", "content_type": "text/plain", "correlation_id": "c", "reply_to": "replies", "type": "t", "X-Odd": "v"},
			Message{Stream: "s", ID: "1-0", Payload: "x", ContentType: "text/plain", CorrelationID: "c", ReplyTo: "replies",
				Headers: map[string]string{"type": "t", "X-Odd": "v"}, Deliveries: 2}},
		{"empty reserved values keep defaults", map[string]string{"content_type": "", "correlation_id": ""},
			Message{Stream: "s", ID: "1-0", ContentType: DefaultContentType, CorrelationID: "1-0", Deliveries: 2}},
		{"trace context is not an attribute", map[string]string{
			"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "k=v", "type": "t"},
			Message{Stream: "s", ID: "1-0", ContentType: DefaultContentType, CorrelationID: "1-0",
				TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", TraceState: "k=v",
				Headers: map[string]string{"type": "t"}, Deliveries: 2}},
		{"nil fields", nil, Message{Stream: "s", ID: "1-0", ContentType: DefaultContentType, CorrelationID: "1-0", Deliveries: 2}},
	}
	// One Message reset through every case, in order and in reverse, must
	// equal a fresh one each time (no attribute left over from the last).
	reused := &Message{}
	for _, order := range [][]int{{0, 1, 2, 3, 4}, {4, 3, 2, 1, 0}, {1, 3, 0, 3, 1}} {
		for _, i := range order {
			tt := tests[i]
			t.Run(tt.name, func(t *testing.T) {
				got := NewMessage("s", "1-0", tt.fields, 2)
				reused.Reset("s", "1-0", tt.fields, 2)
				for _, m := range []*Message{got, reused} {
					g := *m
					g.spare = nil // storage kept for reuse, not content
					if !reflect.DeepEqual(g, tt.want) {
						t.Errorf("message of %v = %+v, want %+v", tt.fields, g, tt.want)
					}
				}
			})
		}
	}
}

func TestNewMessageReplay(t *testing.T) {
	m := NewMessage("retry", "9-1", map[string]string{
		"payload": "{}", "tenant": "acme",
		FieldReplayOf: "5-3", FieldReplayStream: "orders", FieldReplayRoute: "billing",
	}, 1)
	if m.Stream != "orders" || m.ID != "5-3" || m.CorrelationID != "5-3" || m.ReplayRoute != "billing" {
		t.Errorf("NewMessage(replay) = stream %q id %q correlation %q replay route %q; want orders 5-3 5-3 billing",
			m.Stream, m.ID, m.CorrelationID, m.ReplayRoute)
	}
	if len(m.Headers) != 1 || m.Headers["tenant"] != "acme" {
		t.Errorf("NewMessage(replay) headers = %v, want only tenant (replay fields are reserved)", m.Headers)
	}
	plain := NewMessage("orders", "7-1", map[string]string{"payload": "{}"}, 1)
	if plain.Stream != "orders" || plain.ID != "7-1" || plain.ReplayRoute != "" {
		t.Errorf("NewMessage(plain) = %q %q %q", plain.Stream, plain.ID, plain.ReplayRoute)
	}
}

func TestNewMessageReplayFieldsAlone(t *testing.T) {
	tests := []struct {
		name                 string
		fields               map[string]string
		stream, id, corrWant string
	}{
		{"replay stream without replay_of is ignored", map[string]string{FieldReplayStream: "orders", "payload": "{}"}, "retry", "9-1", "9-1"},
		{"correlation_id wins over the replayed id", map[string]string{FieldReplayOf: "5-3", FieldCorrelationID: "c"}, "retry", "5-3", "c"},
		{"replay_of without a stream keeps the stream", map[string]string{FieldReplayOf: "5-3"}, "retry", "5-3", "5-3"},
	}
	for _, tt := range tests {
		m := NewMessage("retry", "9-1", tt.fields, 1)
		if m.Stream != tt.stream || m.ID != tt.id || m.CorrelationID != tt.corrWant || m.Headers != nil {
			t.Errorf("%s: NewMessage(%v) = stream %q id %q correlation %q headers %v; want %q %q %q nil",
				tt.name, tt.fields, m.Stream, m.ID, m.CorrelationID, m.Headers, tt.stream, tt.id, tt.corrWant)
		}
	}
}

// BenchmarkMessageReset is Reset for a realistic entry: the payload and
// one attribute, into a recycled Message.
func BenchmarkMessageReset(b *testing.B) {
	fields := map[string]string{"payload": realisticPayload(7), "source": "bench"}
	var m Message
	b.ReportAllocs()
	for b.Loop() {
		m.Reset("orders", "1700000000000-7", fields, 1)
	}
}
