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

// recorder collects onUpdate calls.
type recorder struct {
	mu    sync.Mutex
	calls []update
}

type update struct {
	service   string
	instances []Instance
	at        time.Time
}

func (r *recorder) onUpdate(service string, insts []Instance) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, update{service, insts, time.Now()})
}

func (r *recorder) all(service string) []update {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []update
	for _, u := range r.calls {
		if u.service == service {
			out = append(out, u)
		}
	}
	return out
}

// latest returns the last snapshot published for service, ok=false if none.
func (r *recorder) latest(service string) ([]Instance, bool) {
	us := r.all(service)
	if len(us) == 0 {
		return nil, false
	}
	return us[len(us)-1].instances, true
}

func ids(insts []Instance) []string {
	out := []string{}
	for _, i := range insts {
		out = append(out, i.ID)
	}
	return out
}

func quietConfig() Config {
	return Config{
		WaitTime:    time.Second,
		MinInterval: time.Millisecond,
		BackoffMin:  time.Millisecond,
		BackoffMax:  5 * time.Millisecond,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// startFake runs a Watcher over a fake client until the test ends.
func startFake(t *testing.T, cfg Config, services ...string) (*Watcher, *fakeHealth, *recorder) {
	t.Helper()
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeHealth()
	rec := &recorder{}
	w := newWatcher(cfg, f, rec.onUpdate)
	w.SetServices(services)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return w, f, rec
}

func TestNextIndex(t *testing.T) {
	tests := []struct {
		name      string
		prev, got uint64
		want      uint64
	}{
		{"first answer", 0, 42, 42},
		{"forward", 42, 50, 50},
		{"unchanged (timeout)", 50, 50, 50},
		{"backwards resets", 50, 7, 1},
		{"zero never used", 50, 0, 1},
		{"zero on first answer", 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextIndex(tt.prev, tt.got); got != tt.want {
				t.Errorf("nextIndex(%d, %d) = %d, want %d", tt.prev, tt.got, got, tt.want)
			}
		})
	}
}

func TestParseWeight(t *testing.T) {
	tests := []struct {
		name   string
		meta   map[string]string
		want   float64
		wantOK bool
	}{
		{"absent", nil, 1, true},
		{"integer", map[string]string{"weight": "3"}, 3, true},
		{"fraction", map[string]string{"weight": "0.25"}, 0.25, true},
		{"spaces", map[string]string{"weight": " 2 "}, 2, true},
		{"zero", map[string]string{"weight": "0"}, 1, false},
		{"negative", map[string]string{"weight": "-2"}, 1, false},
		{"text", map[string]string{"weight": "heavy"}, 1, false},
		{"empty", map[string]string{"weight": ""}, 1, false},
		{"inf", map[string]string{"weight": "+Inf"}, 1, false},
		{"nan", map[string]string{"weight": "NaN"}, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseWeight(tt.meta)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("parseWeight(%v) = %v, %v; want %v, %v", tt.meta, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestInstanceAddr(t *testing.T) {
	tests := []struct {
		inst Instance
		want string
	}{
		{Instance{Address: "10.1.2.3", Port: 8080}, "10.1.2.3:8080"},
		{Instance{Address: "::1", Port: 80}, "[::1]:80"},
		{Instance{Address: "svc.local", Port: 443}, "svc.local:443"},
	}
	for _, tt := range tests {
		if got := tt.inst.Addr(); got != tt.want {
			t.Errorf("Addr(%+v) = %q, want %q", tt.inst, got, tt.want)
		}
	}
}

func TestFromEntriesAddressSortAndWeight(t *testing.T) {
	insts, bad := fromEntries("svc", []*api.ServiceEntry{
		entry("n2", "b", "", 81, map[string]string{"weight": "x"}, "v2"),
		entry("n1", "a", "10.9.9.9", 80, map[string]string{"weight": "2.5"}),
		{Node: &api.Node{Node: "n3"}}, // no service: dropped
	})
	if got := ids(insts); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("ids = %v, want [a b]", got)
	}
	if insts[0].Address != "10.9.9.9" || insts[0].Weight != 2.5 {
		t.Errorf("instance a = %+v, want service address 10.9.9.9 and weight 2.5", insts[0])
	}
	if insts[1].Address != "10.0.0.1" || insts[1].Weight != 1 || !slices.Equal(insts[1].Tags, []string{"v2"}) {
		t.Errorf("instance b = %+v, want node address 10.0.0.1, weight 1, tags [v2]", insts[1])
	}
	if len(bad) != 1 || bad[0].key.id != "b" || bad[0].raw != "x" {
		t.Errorf("bad weights = %+v, want one for b with raw x", bad)
	}
}

func TestWatchFollowsIndexRules(t *testing.T) {
	w, f, rec := startFake(t, quietConfig(), "svc")
	f.push("svc", fakeReply{index: 10, entries: []*api.ServiceEntry{entry("n1", "a", "", 1, nil)}})
	f.push("svc", fakeReply{index: 5, entries: []*api.ServiceEntry{entry("n1", "a", "", 1, nil)}}) // backwards
	f.push("svc", fakeReply{index: 0, entries: []*api.ServiceEntry{entry("n1", "a", "", 1, nil)}}) // bogus zero
	f.push("svc", fakeReply{index: 12, entries: []*api.ServiceEntry{entry("n1", "a", "", 1, nil)}})
	waitFor(t, 2*time.Second, "5 requests", func() bool { return len(f.requestsFor("svc")) >= 5 })

	reqs := f.requestsFor("svc")
	var got []uint64
	for _, r := range reqs[:5] {
		got = append(got, r.waitIndex)
		if !r.stale || !r.passing {
			t.Errorf("request %+v: want AllowStale and passing-only", r)
		}
	}
	if want := []uint64{0, 10, 1, 1, 12}; !slices.Equal(got, want) {
		t.Errorf("WaitIndex sequence = %v, want %v", got, want)
	}
	if n := len(rec.all("svc")); n != 1 {
		t.Errorf("onUpdate called %d times for an unchanged set, want 1", n)
	}
	if st := w.Status().Services["svc"]; st.Index != 12 {
		t.Errorf("Status index = %d, want 12", st.Index)
	}
}

func TestWatchKeepsLastSetWhileConsulFails(t *testing.T) {
	w, f, rec := startFake(t, quietConfig(), "svc")
	if w.Answered() {
		t.Fatal("Answered before any answer")
	}
	two := []*api.ServiceEntry{entry("n1", "a", "", 1, nil), entry("n1", "b", "", 2, nil)}
	f.push("svc", fakeReply{index: 3, entries: two})
	waitFor(t, time.Second, "first snapshot", func() bool { _, ok := rec.latest("svc"); return ok })
	if !w.Answered() {
		t.Error("Answered = false after an answer")
	}

	down := errors.New("connection refused")
	for range 3 {
		f.push("svc", fakeReply{err: down})
	}
	waitFor(t, time.Second, "3 failures", func() bool { return w.Status().Services["svc"].Failures >= 3 })
	st := w.Status()
	if !st.Degraded || st.LastError != down.Error() || st.Services["svc"].FailingSince.IsZero() {
		t.Errorf("Status while failing = %+v, want degraded with last error and failing-since", st)
	}
	if got := ids(w.Instances("svc")); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Instances while failing = %v, want [a b]", got)
	}
	if st.Services["svc"].Staleness(time.Now()) <= 0 {
		t.Error("Staleness while failing = 0, want > 0")
	}
	if n := len(rec.all("svc")); n != 1 {
		t.Errorf("onUpdate calls = %d, want 1: failures must not publish", n)
	}
	// After an error the watch re-synchronizes with a query that answers
	// at once (index 1), in case Consul restarted with lower indexes.
	for i, r := range f.requestsFor("svc")[2:] {
		if r.waitIndex != 1 {
			t.Errorf("request %d after an error has WaitIndex %d, want 1", i+2, r.waitIndex)
		}
	}

	// Only an answer may shrink the set, and it does so at once.
	f.push("svc", fakeReply{index: 4, entries: nil})
	waitFor(t, time.Second, "empty snapshot", func() bool { i, _ := rec.latest("svc"); return len(rec.all("svc")) == 2 && len(i) == 0 })
	st = w.Status()
	if st.Degraded || st.Services["svc"].Failures != 0 || st.Services["svc"].Staleness(time.Now()) != 0 {
		t.Errorf("Status after recovery = %+v, want not degraded", st)
	}
}

func TestWatchRateLimited(t *testing.T) {
	cfg := quietConfig()
	cfg.MinInterval = 30 * time.Millisecond
	_, f, _ := startFake(t, cfg, "svc")
	for i := range 4 {
		f.push("svc", fakeReply{index: uint64(10 + i)})
	}
	waitFor(t, 2*time.Second, "5 requests", func() bool { return len(f.requestsFor("svc")) >= 5 })
	reqs := f.requestsFor("svc")
	for i := 1; i < 5; i++ {
		// The fake stamps requests a moment after the watcher starts its
		// interval clock; allow for that scheduling skew.
		if gap := reqs[i].at.Sub(reqs[i-1].at); gap < cfg.MinInterval-3*time.Millisecond {
			t.Errorf("gap between requests %d and %d = %v, want >= %v", i-1, i, gap, cfg.MinInterval)
		}
	}
}

func TestInvalidWeightCountedOnce(t *testing.T) {
	w, f, rec := startFake(t, quietConfig(), "svc")
	bad := []*api.ServiceEntry{entry("n1", "a", "", 1, map[string]string{"weight": "-1"})}
	f.push("svc", fakeReply{index: 2, entries: bad})
	f.push("svc", fakeReply{index: 3, entries: bad})
	waitFor(t, time.Second, "two answers", func() bool { return w.Status().Services["svc"].Index == 3 })
	if n := w.Status().InvalidWeights; n != 1 {
		t.Errorf("InvalidWeights = %d, want 1 (same instance and value)", n)
	}
	if i, _ := rec.latest("svc"); len(i) != 1 || i[0].Weight != 1 {
		t.Errorf("snapshot = %+v, want one instance with weight 1", i)
	}
	f.push("svc", fakeReply{index: 4, entries: []*api.ServiceEntry{entry("n1", "a", "", 1, map[string]string{"weight": "abc"})}})
	waitFor(t, time.Second, "third answer", func() bool { return w.Status().Services["svc"].Index == 4 })
	if n := w.Status().InvalidWeights; n != 2 {
		t.Errorf("InvalidWeights after a new bad value = %d, want 2", n)
	}
}

func TestSetServicesStartsAndStopsWatches(t *testing.T) {
	w, f, rec := startFake(t, quietConfig(), "a")
	f.push("a", fakeReply{index: 2, entries: []*api.ServiceEntry{entry("n", "a1", "", 1, nil)}})
	waitFor(t, time.Second, "a answered", func() bool { _, ok := rec.latest("a"); return ok })

	w.SetServices([]string{"b", "b", ""})
	f.push("b", fakeReply{index: 2, entries: []*api.ServiceEntry{entry("n", "b1", "", 1, nil)}})
	waitFor(t, time.Second, "b answered", func() bool { _, ok := rec.latest("b"); return ok })
	if got := w.Instances("a"); got != nil {
		t.Errorf("Instances(a) after removal = %v, want nil", ids(got))
	}
	if _, ok := w.Status().Services["a"]; ok {
		t.Error("Status still lists removed service a")
	}
	// A reply for the removed service must not be consumed or published.
	f.push("a", fakeReply{index: 3, entries: nil})
	before := len(f.requestsFor("a"))
	w.SetServices([]string{"b", "a"})
	waitFor(t, time.Second, "a watched again", func() bool { return len(f.requestsFor("a")) > before })
	waitFor(t, time.Second, "a re-published", func() bool { return len(rec.all("a")) == 2 })
	if i, _ := rec.latest("a"); len(i) != 0 {
		t.Errorf("a after re-adding = %v, want the fresh (empty) answer", ids(i))
	}
	if r := f.requestsFor("a"); r[before].waitIndex != 0 {
		t.Errorf("re-added watch started at index %d, want 0 (fresh)", r[before].waitIndex)
	}
}

func TestRunTwice(t *testing.T) {
	w := newWatcher(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, newFakeHealth(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Run(ctx); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if err := w.Run(ctx); !errors.Is(err, ErrAlreadyRan) {
		t.Errorf("second Run = %v, want ErrAlreadyRan", err)
	}
}
