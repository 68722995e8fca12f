package backend

import (
	"encoding/json"
	"time"

	"github.com/valyala/fasthttp"
)

// batchDoc is the part of a gateway batch request (CONTRACT "Batches") a
// backend reads: each entry's ID and payload.
type batchDoc struct {
	Entries []struct {
		EntryID string          `json:"entryId"`
		Payload json.RawMessage `json:"payload"`
	} `json:"entries"`
}

// handleBatch answers a batch request: every entry counts as a received
// message (OnMessage is called once per entry, with the entry's payload as
// Body and its entryId as MessageID), the whole batch waits one modelled
// service time, and the answer marks every entry SUCCESS, or the request
// fails with 503 at ErrorRate like a single one. A body that is not a
// batch document is answered 400.
func (b *Backend) handleBatch(ctx *fasthttp.RequestCtx) {
	now := time.Now()
	var doc batchDoc
	if err := json.Unmarshal(ctx.PostBody(), &doc); err != nil {
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		ctx.SetBodyString(err.Error())
		return
	}
	b.received.Add(int64(len(doc.Entries)))
	b.batches.Add(1)
	n := b.inflight.Add(1)
	defer b.inflight.Add(-1)
	for m := b.maxIn.Load(); n > m && !b.maxIn.CompareAndSwap(m, n); m = b.maxIn.Load() {
	}
	d := b.cfg.Latency.Sample()
	if b.cfg.OnMessage != nil {
		for _, e := range doc.Entries {
			b.cfg.OnMessage(&Message{
				Received: now, ServiceTime: d, Method: ctx.Method(), Path: ctx.Path(),
				MessageID: []byte(e.EntryID), Body: e.Payload, hdr: &ctx.Request.Header,
			})
		}
	}
	if d > 0 {
		time.Sleep(d)
	}
	ctx.SetContentType("application/json")
	if b.failNow() {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetBody(b.nack)
		return
	}
	out := make([]byte, 0, 16+48*len(doc.Entries))
	out = append(out, `{"statuses":[`...)
	for i, e := range doc.Entries {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"entryId":`...)
		out, _ = appendJSON(out, e.EntryID)
		out = append(out, `,"status":"SUCCESS"}`...)
	}
	ctx.SetBody(append(out, "]}"...))
}

// appendJSON appends v encoded as JSON.
func appendJSON(dst []byte, v string) ([]byte, error) {
	b, err := json.Marshal(v)
	return append(dst, b...), err
}
