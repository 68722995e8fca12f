package router

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/msgroute/gateway/rules"
)

// TestAppendJSONString holds appendJSONString to encoding/json: the same
// text once decoded, and valid JSON, for tricky and random strings.
func TestAppendJSONString(t *testing.T) {
	cases := []string{"", "plain", `q"uote`, `back\slash`, "nl\ncr\rtab\tbs\bff\f", "\x00\x01\x1f\x7f",
		"ünïcødé €", "\u2028\u2029", "bad\xffutf8\xc3", "<html>&amp;</html>", strings.Repeat("é\"", 100)}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, r.IntN(24))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		got := appendJSONString(nil, s)
		if !json.Valid(got) {
			t.Fatalf("appendJSONString(%q) = %s, not valid JSON", s, got)
		}
		ref, _ := json.Marshal(s)
		var a, b string
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(ref, &b); err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Errorf("appendJSONString(%q) decodes to %q, encoding/json's to %q", s, a, b)
		}
		if utf8.ValidString(s) && !strings.ContainsAny(s, "<>&") && string(got) != string(ref) {
			t.Errorf("appendJSONString(%q) = %s, encoding/json = %s", s, got, ref)
		}
	}
}

// TestAppendBatchBody decodes a rendered request and checks every field
// the CONTRACT names, a JSON payload embedded as is and others as strings.
func TestAppendBatchBody(t *testing.T) {
	items := []batchItem{
		{msg: rules.NewMessage("orders", "1-1", map[string]string{"payload": ` {"a":[1,2]} `, "region": "eu", "delivery_attempt": "spoof"}, 1), attempt: 1},
		{msg: rules.NewMessage("orders", "1-2", map[string]string{"payload": "not {json", "content_type": "text/plain", "correlation_id": "c-9", "k\"ey": "v\nal"}, 2), attempt: 4},
		{msg: rules.NewMessage("o\"x", "1-3", map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "k=v"}, 1), attempt: 2},
	}
	body := appendBatchBody(nil, "bulk", items)
	var doc struct {
		Entries []struct {
			EntryID     string            `json:"entryId"`
			Stream      string            `json:"stream"`
			ContentType string            `json:"contentType"`
			Payload     json.RawMessage   `json:"payload"`
			Metadata    map[string]string `json:"metadata"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, body)
	}
	if len(doc.Entries) != 3 {
		t.Fatalf("%d entries, want 3", len(doc.Entries))
	}
	want := []string{
		`1-1 orders application/json {"a":[1,2]} map[correlation_id:1-1 delivery_attempt:1 idempotency_key:orders/1-1/bulk region:eu]`,
		`1-2 orders text/plain "not {json" map[correlation_id:c-9 delivery_attempt:4 idempotency_key:orders/1-2/bulk k"ey:v` + "\n" + `al]`,
		`1-3 o"x application/json "" map[correlation_id:1-3 delivery_attempt:2 idempotency_key:o"x/1-3/bulk traceparent:00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01 tracestate:k=v]`,
	}
	for i, e := range doc.Entries {
		got := fmt.Sprintf("%s %s %s %s %v", e.EntryID, e.Stream, e.ContentType, e.Payload, e.Metadata)
		if got != want[i] {
			t.Errorf("entry %d = %s\nwant      %s", i, got, want[i])
		}
	}
}

// TestAppendPayloadKnownJSON: a payload that matching found to be JSON
// (rules.Match.JSON) is embedded exactly as one validated again would be,
// and one it did not (not JSON, out of float range, never decoded because
// no rule reads the body) is still validated: JSON as is, else a string.
func TestAppendPayloadKnownJSON(t *testing.T) {
	var sets []*rules.Set
	for _, src := range []string{`
routes:
  - {name: miss, service: a, match: 'body.kind == "never"'}
  - {name: bulk, service: a, batch: {max_messages: 10}}`,
		`routes: [{name: bulk, service: a, match: 'headers.type == ""', batch: {max_messages: 10}}]`,
	} {
		set, err := rules.Compile([]rules.Source{{Name: "inline.yaml", Data: []byte(src)}})
		if err != nil {
			t.Fatal(err)
		}
		sets = append(sets, set)
	}
	payloads := []string{
		`{"id":"o-1","total":1500}`, " [1, 2]\n", `"str"`, `null`, `-0.5e+3`, `{"u":"\u00e9\ud83d\ude00 ü"}`,
		`{"k":"` + strings.Repeat(`é\n\"x`, 50000) + `"}`, `{"k":"` + strings.Repeat(`é"x`, 50000) + `"}`,
		"", "not json", `{"id":`, `{"n":1e400}`, "{\"bad\":\"\xff\"}", `{"a":1}{"b":2}`,
	}
	for si, set := range sets {
		for _, p := range payloads {
			ms := set.Match(rules.NewMessage("s", "1-0", map[string]string{"payload": p}, 1), nil)
			if len(ms) != 1 {
				t.Fatalf("set %d: Match(%.40q) = %d routes, want 1", si, p, len(ms))
			}
			if si == 0 && p == payloads[0] && !ms[0].JSON {
				t.Fatalf("Match(%q) under body rules: JSON = false, want true", p)
			}
			got := appendPayload(nil, p, ms[0].JSON)
			want := appendJSONString(nil, p)
			if json.Valid([]byte(p)) {
				want = []byte(p)
			}
			if string(got) != string(want) {
				t.Errorf("set %d: appendPayload(%.40q, known %v) = %.60s, want %.60s", si, p, ms[0].JSON, got, want)
			}
		}
	}
}

// BenchmarkAppendBatchBody renders a batch of 100 ~300-byte orders.
func BenchmarkAppendBatchBody(b *testing.B) {
	payload := `{"seq":1,"ts":1700000000000,"type":"order.created","id":"ord-1","region":"eu","currency":"EUR","priority":2,"total":151.5,"customer":{"id":"cus-1","tier":"gold","country":"de","since":"2021-04-01"},"items":[{"sku":"A-1001","qty":2,"price":49.9},{"sku":"B-2002","qty":1,"price":55.7}],"shipping":{"method":"express","city":"Berlin","zip":"10115"},"note":"leave at door"}`
	items := make([]batchItem, 100)
	for i := range items {
		items[i] = batchItem{msg: rules.NewMessage("orders", fmt.Sprintf("1700000000000-%d", i), map[string]string{"payload": payload, "type": "order.created"}, 1), attempt: 1}
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = appendBatchBody(buf[:0], "bulk", items)
	}
	b.SetBytes(int64(len(buf)))
}
