package router

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/msgroute/gateway/balancer"
	"github.com/msgroute/gateway/rules"
)

func TestParseBatchAnswer(t *testing.T) {
	tests := []struct {
		name, body string
		want       string // fmt of the statuses, or "error"
	}{
		{"statuses", `{"statuses":[{"entryId":"1-1","status":"SUCCESS"},{"entryId":"1-2","status":"drop"}]}`, "[{1-1 SUCCESS} {1-2 drop}]"},
		{"spaced, keys swapped", " {\n \"statuses\" : [ { \"status\" : \"RETRY\" ,\t\"entryId\" : \"1-1\" } ] }\r\n", "[{1-1 RETRY}]"},
		{"extra fields", `{"statuses":[{"entryId":"1-1","status":"RETRY","error":"x"}],"other":1}`, "[{1-1 RETRY}]"},
		{"escapes", `{"statuses":[{"entryId":"1-\"1","status":"SUCC\u0045SS"}]}`, `[{1-"1 SUCCESS}]`},
		{"key case", `{"Statuses":[{"EntryID":"1-1","STATUS":"DROP"}]}`, "[{1-1 DROP}]"},
		{"repeated key", `{"statuses":[{"entryId":"1-1","entryId":"1-2","status":"DROP"}]}`, "[{1-2 DROP}]"},
		{"empty strings", `{"statuses":[{"entryId":"","status":""}]}`, "[{ }]"},
		{"null fields", `{"statuses":[{"entryId":null,"status":"SUCCESS"}]}`, "[{ SUCCESS}]"},
		{"no statuses", `{}`, "[]"},
		{"empty statuses", `{"statuses":[]}`, "[]"},
		{"null", `null`, "[]"},
		{"empty", ``, "error"},
		{"html", `<html>`, "error"},
		{"array", `[{"entryId":"1-1","status":"SUCCESS"}]`, "error"},
		{"wrong type", `{"statuses":"SUCCESS"}`, "error"},
		{"trailing text", `{"statuses":[]} x`, "error"},
		{"cut short", `{"statuses":[{"entryId":"1-1","status":"SUCCESS"}`, "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := parseBatchAnswer([]byte(tt.body))
			got := fmt.Sprint(st)
			if err != nil {
				got = "error"
			}
			if got != tt.want {
				t.Errorf("parseBatchAnswer(%q) = %s (%v), want %s", tt.body, got, err, tt.want)
			}
		})
	}
}

// answerSeeds are answers of the scanned form and near misses of it.
var answerSeeds = []string{
	`{"statuses":[{"entryId":"1-1","status":"SUCCESS"},{"entryId":"1-2","status":"DROP"}]}`,
	` { "statuses" : [ ] } `, `{"statuses":[{"status":"retry","entryId":"7-0"}]}`,
	`{"statuses":[{"entryId":"1-1","status":"SUCCESS"},]}`, `{"statuses":[{"entryId":"1-1"}]}`,
	`{"statuses":[{"entryId":"1-1","status":"SUCCESS","status":"DROP"}]}`, `{"statuses":[{"entryId":"é","status":"x"}]}`,
	`{"statuses":[{"entryId":"a\"b","status":"x"}]}`, `{"statuses":null}`, `{"statuses":[]}{}`, `{"statuses":[{}]}`,
	"{\"statuses\":[{\"entryId\":\"1\x01\",\"status\":\"x\"}]}", `{"statuses":[{"entryId":"1","status":"x"}]`,
}

// FuzzScanAnswer: whatever scanAnswer reads, encoding/json reads as the
// same statuses (scanAnswer is only a fast path of decodeAnswer).
func FuzzScanAnswer(f *testing.F) {
	for _, s := range answerSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkScanAnswer(t, body)
	})
}

func checkScanAnswer(t *testing.T, body []byte) {
	t.Helper()
	fast, ok := scanAnswer(body)
	if !ok {
		return
	}
	slow, err := decodeAnswer(body)
	if err != nil {
		t.Fatalf("scanAnswer(%q) = %v, encoding/json: %v", body, fast, err)
	}
	if len(fast) == 0 && len(slow) == 0 {
		return
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("scanAnswer(%q) = %v, encoding/json %v", body, fast, slow)
	}
}

// TestScanAnswerAgrees runs the fuzz seeds and generated answers through
// checkScanAnswer, and checks that the usual answers take the fast path.
func TestScanAnswerAgrees(t *testing.T) {
	for _, s := range answerSeeds {
		checkScanAnswer(t, []byte(s))
	}
	for _, s := range answerSeeds[:3] {
		if _, ok := scanAnswer([]byte(s)); !ok {
			t.Errorf("scanAnswer(%q) not read, want the fast path", s)
		}
	}
	var b strings.Builder
	b.WriteString(`{"statuses":[`)
	for i := range 1000 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"entryId":"1700000000000-%d","status":"SUCCESS"}`, i)
	}
	b.WriteString("]}")
	checkScanAnswer(t, []byte(b.String()))
	if st, ok := scanAnswer([]byte(b.String())); !ok || len(st) != 1000 {
		t.Errorf("scanAnswer(1000 statuses) = %d, %v; want 1000, true", len(st), ok)
	}
}

// TestPendingBatchSettleAnswers: each entry's class from a 2xx answer,
// whether the statuses come in the batch's order (read by position) or
// not (read by ID), with lower case, unknown, missing, extra and repeated
// statuses.
func TestPendingBatchSettleAnswers(t *testing.T) {
	ids := []string{"1-0", "1-1", "1-2"}
	tests := []struct {
		name, answer string
		want         string // class of each entry: d delivered, x dead letter, t transient
	}{
		{"in order", `{"statuses":[{"entryId":"1-0","status":"SUCCESS"},{"entryId":"1-1","status":"drop"},{"entryId":"1-2","status":"RETRY"}]}`, "dxt"},
		{"reversed", `{"statuses":[{"entryId":"1-2","status":"RETRY"},{"entryId":"1-1","status":"DROP"},{"entryId":"1-0","status":"success"}]}`, "dxt"},
		{"missing one", `{"statuses":[{"entryId":"1-0","status":"SUCCESS"},{"entryId":"1-2","status":"SUCCESS"}]}`, "dtd"},
		{"unknown and extra", `{"statuses":[{"entryId":"1-0","status":"MAYBE"},{"entryId":"1-1","status":"SUCCESS"},{"entryId":"1-2","status":"SUCCESS"},{"entryId":"9-9","status":"DROP"}]}`, "tdd"},
		{"repeated: last wins", `{"statuses":[{"entryId":"1-0","status":"SUCCESS"},{"entryId":"1-1","status":"SUCCESS"},{"entryId":"1-0","status":"DROP"}]}`, "xdt"},
		{"escaped, in order", `{"statuses":[{"entryId":"1-\u0030","status":"SUCCESS"},{"entryId":"1-1","status":"SUCCESS"},{"entryId":"1-2","status":"DROP"}]}`, "ddx"},
		{"none", `{}`, "ttt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &pendingBatch{}
			for _, id := range ids {
				p.items = append(p.items, batchItem{msg: rules.NewMessage("s", id, nil, 1)})
			}
			if o := p.settle(200, []byte(tt.answer), nil); o != balancer.Success {
				t.Errorf("settle(%s) = outcome %v, want success", tt.answer, o)
			}
			var got strings.Builder
			for _, it := range p.items {
				got.WriteByte(map[outcome]byte{delivered: 'd', deadLetter: 'x', transient: 't'}[it.res.class])
			}
			if got.String() != tt.want {
				t.Errorf("settle(%s) = %s, want %s", tt.answer, got.String(), tt.want)
			}
		})
	}
}

// BenchmarkParseBatchAnswer reads the answer to a batch of 100; /json is
// the same answer through encoding/json (the path taken before scanAnswer).
func BenchmarkParseBatchAnswer(b *testing.B) {
	body, _ := okBatchSender{}.answer(100)
	for _, bc := range []struct {
		name  string
		parse func([]byte) ([]entryStatus, error)
	}{{"scan", parseBatchAnswer}, {"json", decodeAnswer}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if st, err := bc.parse(body); err != nil || len(st) != 100 {
					b.Fatal(len(st), err)
				}
			}
		})
	}
}
