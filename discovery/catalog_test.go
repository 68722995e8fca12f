package discovery

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// TestCatalogListsServicesWithMeta: the catalog watch reports services
// whose instances carry meta (and only those), within a second of a
// change; the health watch's snapshot carries each instance's declarations.
func TestCatalogListsServicesWithMeta(t *testing.T) {
	f := startConsulFixture(t, "audit")
	var mu sync.Mutex
	var lists [][]string
	cat, err := NewCatalog(Config{Address: f.consul.Addr, WaitTime: 5 * time.Second, MinInterval: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, func(s []string) {
		mu.Lock()
		lists = append(lists, s)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cat.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	last := func() []string {
		mu.Lock()
		defer mu.Unlock()
		if len(lists) == 0 {
			return nil
		}
		return lists[len(lists)-1]
	}
	waitFor(t, 10*time.Second, "first catalog answer", func() bool { return cat.Answered() })
	if slices.Contains(last(), "audit") {
		t.Fatalf("catalog lists audit before it registered: %v", last())
	}

	f.register(t, &api.AgentServiceRegistration{ID: "plain-1", Name: "plain", Port: 1})
	decl := `{"stream":"orders","match":"true"}`
	at := f.register(t, &api.AgentServiceRegistration{ID: "audit-1", Name: "audit", Address: "127.0.0.1", Port: 2,
		Meta: map[string]string{"gateway-sub-trail": decl, "weight": "2"}})
	waitFor(t, 10*time.Second, "audit listed", func() bool { return slices.Contains(last(), "audit") })
	within(t, "the catalog change", time.Since(at), propagation)
	if slices.Contains(last(), "plain") {
		t.Errorf("catalog lists plain, which has no meta: %v", last())
	}
	u, _ := f.waitSnapshot(t, "audit", at, "audit-1")
	want := []Declaration{{Name: "trail", Value: decl, Key: DeclarationKey("trail", decl)}}
	if got := u.instances[0].Declarations; !slices.Equal(got, want) || u.instances[0].Weight != 2 {
		t.Errorf("declarations = %+v weight %v, want %+v and 2", got, u.instances[0].Weight, want)
	}

	// A changed declaration is a changed snapshot.
	at = f.register(t, &api.AgentServiceRegistration{ID: "audit-1", Name: "audit", Address: "127.0.0.1", Port: 2,
		Meta: map[string]string{"gateway-sub-trail": `{"stream":"orders","match":"false"}`}})
	waitFor(t, 10*time.Second, "changed declaration", func() bool {
		for _, u := range f.rec.all("audit") {
			if u.at.After(at) && len(u.instances) == 1 && len(u.instances[0].Declarations) == 1 &&
				u.instances[0].Declarations[0].Value == `{"stream":"orders","match":"false"}` {
				return true
			}
		}
		return false
	})

	at = time.Now()
	if err := f.client.Agent().ServiceDeregister("audit-1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "audit unlisted", func() bool { return !slices.Contains(last(), "audit") })
	within(t, "the catalog change", time.Since(at), propagation)
}

func TestDeclarationKey(t *testing.T) {
	a, b := DeclarationKey("trail", `{"a":1}`), DeclarationKey("trail", `{"a":2}`)
	if a == b || a != DeclarationKey("trail", `{"a":1}`) || DeclarationKey("other", `{"a":1}`) == a {
		t.Errorf("keys: %s %s", a, b)
	}
	got := declarations(map[string]string{"gateway-sub-b": "2", "weight": "1", "gateway-sub-a": "1", "gateway-subx": "3"})
	if len(got) != 2 || got[0].Name != "a" || got[1].Name != "b" || got[1].Value != "2" {
		t.Errorf("declarations = %+v, want a and b sorted", got)
	}
}

// fakeCatalog answers from a script; with nothing left it blocks until
// the query's context ends.
type fakeCatalog struct {
	mu      sync.Mutex
	replies []fakeCatalogReply
	filters []string
}

type fakeCatalogReply struct {
	services map[string][]string
	index    uint64
	err      error
}

func (f *fakeCatalog) Services(q *api.QueryOptions) (map[string][]string, *api.QueryMeta, error) {
	f.mu.Lock()
	f.filters = append(f.filters, q.Filter)
	if len(f.replies) > 0 {
		r := f.replies[0]
		f.replies = f.replies[1:]
		f.mu.Unlock()
		return r.services, &api.QueryMeta{LastIndex: r.index}, r.err
	}
	f.mu.Unlock()
	<-q.Context().Done()
	return nil, nil, q.Context().Err()
}

// TestCatalogKeepsListThroughErrors: a failed query changes nothing (the
// last list stays, no callback), the watch retries with backoff, and only
// a different list is reported again.
func TestCatalogKeepsListThroughErrors(t *testing.T) {
	fc := &fakeCatalog{replies: []fakeCatalogReply{
		{services: map[string][]string{"b": nil, "a": nil}, index: 5},
		{err: errors.New("connection refused")},
		{err: errors.New("connection refused")},
		{services: map[string][]string{"a": nil, "b": nil}, index: 6},
		{services: map[string][]string{"a": nil}, index: 7},
	}}
	var mu sync.Mutex
	var got [][]string
	cfg, err := Config{MinInterval: time.Millisecond, BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	c := newCatalog(cfg, fc, func(s []string) {
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	waitFor(t, 5*time.Second, "five answers", func() bool {
		fc.mu.Lock()
		defer fc.mu.Unlock()
		return len(fc.replies) == 0
	})
	waitFor(t, 5*time.Second, "the last list", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 2
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if !slices.Equal(got[0], []string{"a", "b"}) || !slices.Equal(got[1], []string{"a"}) {
		t.Errorf("onChange calls = %v, want [a b] then [a]", got)
	}
	for _, f := range fc.filters {
		if f != DeclarationFilter {
			t.Errorf("query filter = %q, want %q", f, DeclarationFilter)
		}
	}
}
