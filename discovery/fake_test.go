package discovery

import (
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// fakeHealth answers queries from a script, one reply per query and per
// service; with no reply left, a query blocks until its context ends, as
// a blocking query without changes would.
type fakeHealth struct {
	mu       sync.Mutex
	replies  map[string][]fakeReply
	requests []fakeRequest
	wake     chan struct{} // closed and replaced on every new reply
}

type fakeReply struct {
	entries []*api.ServiceEntry
	index   uint64
	err     error
	// aclPolicy is the agent's X-Consul-Default-Acl-Policy ("" = ACLs off).
	aclPolicy string
}

type fakeRequest struct {
	service   string
	waitIndex uint64
	at        time.Time
	stale     bool
	passing   bool
}

func newFakeHealth() *fakeHealth {
	return &fakeHealth{replies: map[string][]fakeReply{}, wake: make(chan struct{})}
}

func (f *fakeHealth) push(service string, r fakeReply) {
	f.mu.Lock()
	f.replies[service] = append(f.replies[service], r)
	close(f.wake)
	f.wake = make(chan struct{})
	f.mu.Unlock()
}

func (f *fakeHealth) Service(service, _ string, passing bool, q *api.QueryOptions) ([]*api.ServiceEntry, *api.QueryMeta, error) {
	ctx := q.Context()
	f.mu.Lock()
	f.requests = append(f.requests, fakeRequest{service: service, waitIndex: q.WaitIndex, at: time.Now(), stale: q.AllowStale, passing: passing})
	f.mu.Unlock()
	for {
		if err := ctx.Err(); err != nil { // a canceled watch must not consume replies
			return nil, nil, err
		}
		f.mu.Lock()
		if rs := f.replies[service]; len(rs) > 0 {
			r := rs[0]
			f.replies[service] = rs[1:]
			f.mu.Unlock()
			if r.err != nil {
				return nil, nil, r.err
			}
			return r.entries, &api.QueryMeta{LastIndex: r.index, DefaultACLPolicy: r.aclPolicy}, nil
		}
		wake := f.wake
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-wake:
		}
	}
}

func (f *fakeHealth) requestsFor(service string) []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeRequest
	for _, r := range f.requests {
		if r.service == service {
			out = append(out, r)
		}
	}
	return out
}

func entry(node, id, addr string, port int, meta map[string]string, tags ...string) *api.ServiceEntry {
	return &api.ServiceEntry{
		Node:    &api.Node{Node: node, Address: "10.0.0.1"},
		Service: &api.AgentService{ID: id, Service: "svc", Address: addr, Port: port, Tags: tags, Meta: meta},
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}
