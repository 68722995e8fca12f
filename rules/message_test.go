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
		{"nil fields", nil, Message{Stream: "s", ID: "1-0", ContentType: DefaultContentType, CorrelationID: "1-0", Deliveries: 2}},
	}
	// One Message reset through every case, in order and in reverse, must
	// equal a fresh one each time (no attribute left over from the last).
	reused := &Message{}
	for _, order := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {1, 1, 0, 1}} {
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
