package streams

import (
	"bytes"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/msgroute/gateway/rules"
)

// FuzzEntryDecoding: any stream entry Redis can hold (any number of fields,
// any bytes in names and values, duplicate names, nil values) decodes into
// an Entry and a rules.Message without panicking, keeps every field, splits
// reserved fields from attributes, and can be matched and explained
// against a real rule set.
func FuzzEntryDecoding(f *testing.F) {
	set, err := rules.Load("../../rules/testdata/rules.yaml")
	if err != nil {
		f.Fatal(err)
	}
	// data holds NUL-separated name, value, name, value, ...
	f.Add("1-0", []byte("type\x00order.created\x00payload\x00{\"id\":\"a\",\"total\":1500,\"region\":\"eu\"}"), int64(1))
	f.Add("1-1", []byte("payload\x00\xff\xfe\x00content_type\x00\x00correlation_id\x00\x00reply_to\x00r"), int64(0))
	f.Add("", []byte("\x00\x00\x00"), int64(-1))
	f.Add("9-9", []byte("type\x00a\x00type\x00b\x00payload\x00[[[[[[]]]]]]\x00odd"), int64(1<<40))
	f.Add("2-0", bytes.Repeat([]byte("f\x00v\x00"), 300), int64(2))
	f.Fuzz(func(t *testing.T, id string, data []byte, deliveries int64) {
		parts := bytes.Split(data, []byte{0})
		values := map[string]any{}
		for i := 0; i+1 < len(parts); i += 2 {
			if len(parts[i+1]) == 1 && parts[i+1][0] == 0xff {
				values[string(parts[i])] = nil // a nil reply value
				continue
			}
			values[string(parts[i])] = string(parts[i+1])
		}
		if len(parts)%2 == 1 && len(parts) > 1 {
			values[string(parts[len(parts)-1])] = int64(len(parts)) // non-string value
		}
		e := toEntry("orders", redis.XMessage{ID: id, Values: values}, deliveries)
		if len(e.Fields) != len(values) {
			t.Fatalf("toEntry: %d fields from %d values", len(e.Fields), len(values))
		}
		m := rules.NewMessage(e.Stream, e.ID, e.Fields, e.Deliveries)
		if m.ContentType == "" {
			t.Fatal("NewMessage: empty ContentType")
		}
		if m.CorrelationID == "" && id != "" {
			t.Fatal("NewMessage: empty CorrelationID")
		}
		if m.Payload != e.Fields[rules.FieldPayload] {
			t.Fatalf("NewMessage: Payload = %q, want %q", m.Payload, e.Fields[rules.FieldPayload])
		}
		attrs := 0
		for k, v := range e.Fields {
			switch k {
			case rules.FieldPayload, rules.FieldContentType, rules.FieldCorrelationID, rules.FieldReplyTo,
				rules.FieldReplayOf, rules.FieldReplayStream, rules.FieldReplayRoute:
				if _, ok := m.Headers[k]; ok {
					t.Fatalf("NewMessage: reserved field %q became an attribute", k)
				}
			default:
				attrs++
				if got, ok := m.Headers[k]; !ok || got != v {
					t.Fatalf("NewMessage: attribute %q = %q (%v), want %q", k, got, ok, v)
				}
			}
		}
		if len(m.Headers) != attrs {
			t.Fatalf("NewMessage: %d attributes, want %d", len(m.Headers), attrs)
		}
		for _, mt := range set.Match(m, nil) {
			if mt.Route == nil {
				t.Fatalf("Match returned a nil route: %+v", mt)
			}
		}
		set.Explain(m)
	})
}
