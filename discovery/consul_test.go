package discovery

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/msgroute/gateway/internal/testenv"
)

// propagation is the contract: a change reaches routing within 1 s of
// Consul answering. Registration calls return once the agent has applied
// the change, so they are the earliest moment Consul can answer.
const propagation = time.Second

// consulFixture is a real Consul dev agent with a Watcher on it.
type consulFixture struct {
	consul *testenv.Consul
	client *api.Client
	w      *Watcher
	rec    *recorder
}

func startConsulFixture(t *testing.T, services ...string) *consulFixture {
	t.Helper()
	c := testenv.StartConsul(t)
	client, err := api.NewClient(&api.Config{Address: c.Addr})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	w, err := New(Config{
		Address:     c.Addr,
		WaitTime:    5 * time.Second,
		MinInterval: 20 * time.Millisecond,
		BackoffMin:  50 * time.Millisecond,
		BackoffMax:  300 * time.Millisecond,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, rec.onUpdate)
	if err != nil {
		t.Fatal(err)
	}
	w.SetServices(services)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return &consulFixture{consul: c, client: client, w: w, rec: rec}
}

// waitSnapshot waits for an onUpdate of service after since whose
// instance IDs are want, and returns how long after since it came.
func (f *consulFixture) waitSnapshot(t *testing.T, service string, since time.Time, want ...string) (update, time.Duration) {
	t.Helper()
	slices.Sort(want)
	if want == nil {
		want = []string{}
	}
	var found update
	waitFor(t, 10*time.Second, service+" = "+join(want), func() bool {
		for _, u := range f.rec.all(service) {
			if u.at.After(since) && slices.Equal(ids(u.instances), want) {
				found = u
				return true
			}
		}
		return false
	})
	return found, found.at.Sub(since)
}

func join(s []string) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out + "]"
}

// register registers reg and returns the time just before the call: the
// update may be published before the call returns.
func (f *consulFixture) register(t *testing.T, reg *api.AgentServiceRegistration) time.Time {
	t.Helper()
	at := time.Now()
	if err := f.client.Agent().ServiceRegister(reg); err != nil {
		t.Fatalf("register %s: %v", reg.ID, err)
	}
	return at
}

func within(t *testing.T, what string, d time.Duration, limit time.Duration) {
	t.Helper()
	if d > limit {
		t.Errorf("%s reached onUpdate after %v, want within %v", what, d, limit)
	}
}

func TestConsulRegistrationHealthAndOutage(t *testing.T) {
	f := startConsulFixture(t, "web")
	start := time.Now()
	f.waitSnapshot(t, "web", start.Add(-time.Minute)) // first answer: empty
	if !f.w.Answered() {
		t.Fatal("Answered = false after the first answer")
	}

	// Registration, with a weight and tags.
	at := f.register(t, &api.AgentServiceRegistration{
		ID: "web-1", Name: "web", Address: "127.0.0.1", Port: 9001, Tags: []string{"v1", "eu"},
		Meta:  map[string]string{"weight": "2"},
		Check: &api.AgentServiceCheck{CheckID: "web-1-ttl", TTL: "1m", Status: api.HealthPassing},
	})
	u, d := f.waitSnapshot(t, "web", at, "web-1")
	within(t, "registration", d, propagation)
	got := u.instances[0]
	if got.Weight != 2 || got.Addr() != "127.0.0.1:9001" || !slices.Equal(got.Tags, []string{"v1", "eu"}) || got.Service != "web" || got.Node == "" {
		t.Errorf("web-1 = %+v, want weight 2, 127.0.0.1:9001, tags [v1 eu], service web, a node", got)
	}

	// A second instance without service address and with a bad weight.
	at = f.register(t, &api.AgentServiceRegistration{ID: "web-2", Name: "web", Port: 9002, Meta: map[string]string{"weight": "heavy"}})
	u, d = f.waitSnapshot(t, "web", at, "web-1", "web-2")
	within(t, "second registration", d, propagation)
	if w2 := u.instances[1]; w2.Weight != 1 || w2.Address != "127.0.0.1" {
		t.Errorf("web-2 = %+v, want weight 1 (invalid meta) and the node address", w2)
	}
	if n := f.w.Status().InvalidWeights; n != 1 {
		t.Errorf("InvalidWeights = %d, want 1", n)
	}

	// A failing TTL check takes the instance out; passing brings it back.
	at = time.Now()
	if err := f.client.Agent().FailTTL("web-1-ttl", "test"); err != nil {
		t.Fatal(err)
	}
	_, d = f.waitSnapshot(t, "web", at, "web-2")
	within(t, "failing TTL check", d, propagation)
	at = time.Now()
	if err := f.client.Agent().PassTTL("web-1-ttl", "test"); err != nil {
		t.Fatal(err)
	}
	_, d = f.waitSnapshot(t, "web", at, "web-1", "web-2")
	within(t, "passing TTL check", d, propagation)

	// Deregistration.
	at = time.Now()
	if err := f.client.Agent().ServiceDeregister("web-2"); err != nil {
		t.Fatal(err)
	}
	_, d = f.waitSnapshot(t, "web", at, "web-1")
	within(t, "deregistration", d, propagation)

	// Consul dies: the last set stays, status turns degraded, nothing shrinks.
	published := len(f.rec.all("web"))
	f.consul.Kill()
	waitFor(t, 5*time.Second, "degraded status", func() bool { return f.w.Status().Degraded })
	st := f.w.Status()
	if st.LastError == "" || st.Services["web"].FailingSince.IsZero() || !st.Answered {
		t.Errorf("Status during outage = %+v, want last error, failing-since and answered", st)
	}
	waitFor(t, 5*time.Second, "several failed queries", func() bool { return f.w.Status().Services["web"].Failures >= 3 })
	if got := ids(f.w.Instances("web")); !slices.Equal(got, []string{"web-1"}) {
		t.Errorf("Instances during outage = %v, want [web-1]", got)
	}
	if n := len(f.rec.all("web")); n != published {
		t.Errorf("onUpdate called %d times during the outage, want 0", n-published)
	}

	// Consul returns empty-handed (dev agents forget everything); the
	// service registers again and updates resume, although the new agent's
	// indexes went backwards.
	f.consul.Start()
	at = f.register(t, &api.AgentServiceRegistration{ID: "web-1", Name: "web", Address: "127.0.0.1", Port: 9001})
	_, d = f.waitSnapshot(t, "web", at, "web-1")
	// The restarted agent's index is below the watcher's: without the
	// reset after errors this would wait out a whole WaitTime (5s).
	within(t, "re-registration after Consul restart", d, propagation)
	waitFor(t, 5*time.Second, "recovered status", func() bool { return !f.w.Status().Degraded })
	at = f.register(t, &api.AgentServiceRegistration{ID: "web-3", Name: "web", Address: "127.0.0.1", Port: 9003})
	_, d = f.waitSnapshot(t, "web", at, "web-1", "web-3")
	within(t, "registration after Consul restart", d, propagation)
}

func TestConsulFailingHTTPCheck(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer backend.Close()

	f := startConsulFixture(t, "api")
	at := f.register(t, &api.AgentServiceRegistration{
		ID: "api-1", Name: "api", Address: "127.0.0.1", Port: 9100,
		Check: &api.AgentServiceCheck{CheckID: "api-1-http", HTTP: backend.URL, Interval: "1s", Timeout: "500ms", Status: api.HealthPassing},
	})
	f.waitSnapshot(t, "api", at, "api-1")

	healthy.Store(false)
	flipped := time.Now()
	// Consul runs the check on its own schedule (interval plus stagger)
	// and the agent syncs the result to the catalog some time later; the
	// contract clock starts when Consul answers with the change, i.e. when
	// a plain (non-blocking) health query from the test first sees it.
	var failedAt time.Time
	waitFor(t, 10*time.Second, "agent marks the check critical", func() bool {
		checks, err := f.client.Agent().Checks()
		if err == nil && checks["api-1-http"] != nil && checks["api-1-http"].Status == api.HealthCritical {
			failedAt = time.Now()
			return true
		}
		return false
	})
	var catalogAt time.Time
	waitFor(t, 10*time.Second, "catalog drops api-1", func() bool {
		es, _, err := f.client.Health().Service("api", "", true, nil)
		if err == nil && len(es) == 0 {
			catalogAt = time.Now()
			return true
		}
		return false
	})
	u, _ := f.waitSnapshot(t, "api", flipped) // none left
	t.Logf("flip->agent %v, agent->catalog %v, update-catalog %v", failedAt.Sub(flipped), catalogAt.Sub(failedAt), u.at.Sub(catalogAt))
	within(t, "failing HTTP check", u.at.Sub(catalogAt), propagation)
}

func TestConsulSetServices(t *testing.T) {
	f := startConsulFixture(t, "web")
	at := f.register(t, &api.AgentServiceRegistration{ID: "web-1", Name: "web", Port: 9001})
	f.waitSnapshot(t, "web", at, "web-1")
	at = f.register(t, &api.AgentServiceRegistration{ID: "pay-1", Name: "pay", Port: 9201})
	if got := f.rec.all("pay"); len(got) != 0 {
		t.Fatalf("unwatched service published: %+v", got)
	}

	added := time.Now()
	f.w.SetServices([]string{"web", "pay"})
	_, d := f.waitSnapshot(t, "pay", at, "pay-1")
	within(t, "new watch", time.Since(added), 5*time.Second)

	f.w.SetServices([]string{"pay"})
	waitFor(t, 5*time.Second, "web unwatched", func() bool { _, ok := f.w.Status().Services["web"]; return !ok })
	if got := f.w.Instances("web"); got != nil {
		t.Errorf("Instances(web) after unwatching = %v, want nil", ids(got))
	}
	n := len(f.rec.all("web"))
	at = f.register(t, &api.AgentServiceRegistration{ID: "pay-2", Name: "pay", Port: 9202})
	if err := f.client.Agent().ServiceDeregister("web-1"); err != nil {
		t.Fatal(err)
	}
	_, d = f.waitSnapshot(t, "pay", at, "pay-1", "pay-2")
	within(t, "registration", d, propagation)
	if got := len(f.rec.all("web")); got != n {
		t.Errorf("unwatched web published %d more snapshots", got-n)
	}
}
