package backend

import (
	"sync"
	"testing"
)

func TestBatchMode(t *testing.T) {
	var mu sync.Mutex
	var bodies, ids []string
	b, err := New(Config{Name: "svc", BatchPath: "/batch/", OnMessage: func(m *Message) {
		mu.Lock()
		defer mu.Unlock()
		bodies = append(bodies, string(m.Body))
		ids = append(ids, string(m.MessageID))
	}})
	if err != nil {
		t.Fatal(err)
	}
	c := serve(t, b)
	doc := `{"entries":[{"entryId":"1-0","stream":"s","contentType":"application/json","payload":{"seq":7,"ts":1},"metadata":{"delivery_attempt":"1"}},` +
		`{"entryId":"1-\"1","payload":"text","metadata":{}}]}`
	status, answer := post(t, c, "/batch/r1", doc, nil)
	if want := `{"statuses":[{"entryId":"1-0","status":"SUCCESS"},{"entryId":"1-\"1","status":"SUCCESS"}]}`; status != 200 || string(answer) != want {
		t.Errorf("batch answer %d %s, want 200 %s", status, answer, want)
	}
	mu.Lock()
	if len(bodies) != 2 || bodies[0] != `{"seq":7,"ts":1}` || bodies[1] != `"text"` || ids[0] != "1-0" || ids[1] != `1-"1` {
		t.Errorf("OnMessage saw bodies %q ids %q, want each entry's payload and ID", bodies, ids)
	}
	mu.Unlock()
	if s := b.Stats(); s.Received != 2 || s.Batches != 1 {
		t.Errorf("stats %+v, want 2 received in 1 batch", s)
	}
	if status, _ := post(t, c, "/batch/r1", "not json", nil); status != 400 {
		t.Errorf("bad batch: status %d, want 400", status)
	}
	if status, _ := post(t, c, "/r1", `{"seq":8}`, nil); status != 200 || b.Stats().Received != 3 {
		t.Errorf("single request beside batch mode: status %d, stats %+v", status, b.Stats())
	}
}
