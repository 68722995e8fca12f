package subscriptions

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/msgroute/gateway/discovery"
	"github.com/msgroute/gateway/rules"
)

// fixture is a Registry with recording outputs.
type fixture struct {
	r       *Registry
	mu      sync.Mutex
	sets    []*rules.Set
	watched []string
	active  int
	invalid int
	log     bytes.Buffer
}

func newFixture(t *testing.T, streams []string) *fixture {
	t.Helper()
	file, err := rules.Compile([]rules.Source{{Name: "r.yaml", Data: []byte(`
routes:
  - {name: created, streams: [orders], match: 'headers.type == "order.created"', service: orders}
`)}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{}
	f.r = New(Config{Streams: streams, Logger: slog.New(slog.NewTextHandler(&f.log, nil))}, file, Deps{
		Publish: func(s *rules.Set) { f.sets = append(f.sets, s) },
		Watch:   func(s []string) { f.watched = s },
		Count:   func(a, i int) { f.active, f.invalid = a, i },
	})
	f.r.SetCatalog([]string{"audit", "billing"})
	return f
}

func (f *fixture) last() *rules.Set { return f.sets[len(f.sets)-1] }

func inst(id string, decl ...string) discovery.Instance {
	in := discovery.Instance{ID: id, Node: "n1", Address: "127.0.0.1", Port: 1}
	for i := 0; i+1 < len(decl); i += 2 {
		in.Declarations = append(in.Declarations, discovery.Declaration{Name: decl[i], Value: decl[i+1], Key: discovery.DeclarationKey(decl[i], decl[i+1])})
	}
	return in
}

func subNames(s *rules.Set) []string {
	var out []string
	for _, r := range s.Subscriptions() {
		out = append(out, r.Name)
	}
	return out
}

func TestRegistryInvalidDeclarationsRejectedAlone(t *testing.T) {
	f := newFixture(t, []string{"orders", "payments"})
	f.r.Update("audit", []discovery.Instance{
		inst("audit-1",
			"good", `{"stream":"orders","match":"true"}`,
			"badexpr", `{"stream":"orders","match":"nope == 1"}`,
			"unknown", `{"stream":"orders","match":"true","retries":2}`,
			"stream", `{"stream":"events","match":"true"}`),
	})
	if got := subNames(f.last()); !slices.Equal(got, []string{"audit/good"}) {
		t.Fatalf("active subscriptions = %v, want [audit/good]", got)
	}
	if len(f.last().Routes()) != 1 {
		t.Errorf("file routes = %d, want 1", len(f.last().Routes()))
	}
	if f.active != 1 || f.invalid != 3 {
		t.Errorf("Count = %d active, %d invalid; want 1, 3", f.active, f.invalid)
	}
	want := map[string]string{
		"badexpr": "match: unknown name nope",
		"unknown": `unknown field "retries"`,
		"stream":  `stream "events" is not one subscriptions may read`,
	}
	for _, st := range f.r.Status() {
		if !slices.Equal(st.Instances, []string{"audit-1"}) || st.Service != "audit" || st.Route != "audit/"+st.Name {
			t.Errorf("status %+v: wrong service, route or instances", st)
		}
		w, invalid := want[st.Name]
		switch {
		case invalid && (st.State != StateInvalid || !strings.Contains(st.Error, w)):
			t.Errorf("status of %s = %s %q, want invalid with %q", st.Name, st.State, st.Error, w)
		case !invalid && (st.State != StateActive || st.Error != ""):
			t.Errorf("status of %s = %s %q, want active", st.Name, st.State, st.Error)
		}
	}
}

func TestRegistryVariantsPerInstance(t *testing.T) {
	f := newFixture(t, nil)
	v1 := `{"stream":"orders","match":"headers.type == \"order.created\""}`
	v2 := `{"stream":"orders","match":"true"}`
	f.r.Update("audit", []discovery.Instance{inst("a", "trail", v1), inst("b", "trail", v2), inst("c", "trail", v2), inst("d")})
	subs := f.last().Subscriptions()
	if len(subs) != 2 || subs[0].Name != "audit/trail" || subs[1].Name != "audit/trail" {
		t.Fatalf("subscriptions = %v, want two variants of audit/trail", subNames(f.last()))
	}
	keys := map[string][]string{}
	for _, st := range f.r.Status() {
		keys[st.Key] = st.Instances
	}
	if got := keys[discovery.DeclarationKey("trail", v1)]; !slices.Equal(got, []string{"a"}) {
		t.Errorf("instances of the v1 variant = %v, want [a]", got)
	}
	if got := keys[discovery.DeclarationKey("trail", v2)]; !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("instances of the v2 variant = %v, want [b c]", got)
	}
	for _, r := range subs {
		if len(r.Tags) != 1 || (r.Tags[0] != discovery.DeclarationKey("trail", v1) && r.Tags[0] != discovery.DeclarationKey("trail", v2)) {
			t.Errorf("route tags = %v, want the declaration key", r.Tags)
		}
	}
}

func TestRegistryChangesPublishAndLogOnce(t *testing.T) {
	f := newFixture(t, nil)
	good := `{"stream":"orders","match":"true"}`
	bad := `{"stream":"orders","match":"nope"}`
	f.r.Update("audit", []discovery.Instance{inst("a", "x", good, "y", bad)})
	n, logs := len(f.sets), f.log.String()
	// The same declarations again, and a non-declaring instance coming
	// and going (health flaps): nothing to publish, nothing to log.
	f.r.Update("audit", []discovery.Instance{inst("a", "x", good, "y", bad)})
	f.r.Update("audit", []discovery.Instance{inst("a", "x", good, "y", bad), inst("b")})
	if len(f.sets) != n || f.log.String() != logs {
		t.Errorf("unchanged declarations published %d sets and logged %q", len(f.sets)-n, strings.TrimPrefix(f.log.String(), logs))
	}
	if strings.Count(logs, "subscription declaration rejected") != 1 || strings.Count(logs, "subscription active") != 1 {
		t.Errorf("logs = %q, want one rejected and one active line", logs)
	}
	f.r.Update("audit", nil)
	if len(f.last().Subscriptions()) != 0 || f.active != 0 || f.invalid != 0 || len(f.r.Status()) != 0 {
		t.Errorf("after the instances left: %v active routes, counts %d/%d", subNames(f.last()), f.active, f.invalid)
	}
	if strings.Count(f.log.String(), "subscription removed") != 2 {
		t.Errorf("logs = %q, want two removed lines", f.log.String())
	}
}

func TestRegistryCatalogAndRules(t *testing.T) {
	f := newFixture(t, nil)
	f.r.SetCatalog([]string{"audit", "billing"})
	if !slices.Equal(f.watched, []string{"audit", "billing", "orders"}) {
		t.Errorf("watched = %v, want catalog and rule services", f.watched)
	}
	f.r.Update("audit", []discovery.Instance{inst("a", "x", `{"stream":"orders","match":"true"}`)})
	if len(f.last().Subscriptions()) != 1 {
		t.Fatal("subscription not published")
	}
	// A new file set keeps the subscriptions.
	file, err := rules.Compile([]rules.Source{{Name: "r.yaml", Data: []byte("routes:\n  - {name: other, service: payments}\n")}})
	if err != nil {
		t.Fatal(err)
	}
	f.r.SetRules(file)
	if got := f.last(); len(got.Subscriptions()) != 1 || got.Routes()[0].Name != "other" {
		t.Errorf("after SetRules: routes %v, subscriptions %v", got.Routes(), subNames(got))
	}
	if !slices.Equal(f.watched, []string{"audit", "billing", "payments"}) {
		t.Errorf("watched = %v after SetRules", f.watched)
	}
	// The service leaves the catalog: its declarations go with it.
	f.r.SetCatalog([]string{"billing"})
	if len(f.last().Subscriptions()) != 0 {
		t.Errorf("subscriptions of a service gone from the catalog still active: %v", subNames(f.last()))
	}
	// A service the rules name stays watched when it leaves the catalog:
	// discovery keeps reporting it, so a stale catalog answer must not
	// drop what its instances declare.
	f.r.Update("payments", []discovery.Instance{inst("p", "x", `{"stream":"orders","match":"true"}`)})
	f.r.SetCatalog(nil)
	if got := subNames(f.last()); !slices.Equal(got, []string{"payments/x"}) {
		t.Errorf("after the catalog stopped listing a rules service: active %v, want [payments/x]", got)
	}
	// Once the rules stop naming it too, it is no longer watched.
	f.r.SetRules(emptySet(t))
	if len(f.last().Subscriptions()) != 0 {
		t.Errorf("subscriptions of an unwatched service still active: %v", subNames(f.last()))
	}
}

func TestRegistryNameTakenByFileRoute(t *testing.T) {
	f := newFixture(t, nil)
	file, err := rules.Compile([]rules.Source{{Name: "r.yaml", Data: []byte("routes:\n  - {name: audit/x, service: audit}\n")}})
	if err != nil {
		t.Fatal(err)
	}
	f.r.SetRules(file)
	f.r.Update("audit", []discovery.Instance{inst("a", "x", `{"stream":"orders","match":"true"}`, "y", `{"stream":"orders","match":"true"}`)})
	if got := subNames(f.last()); !slices.Equal(got, []string{"audit/y"}) {
		t.Errorf("active = %v, want [audit/y]", got)
	}
	st := f.r.Status()
	if st[0].State != StateInvalid || !strings.Contains(st[0].Error, `route name "audit/x" is taken by the rules file route at r.yaml:2`) {
		t.Errorf("status = %+v", st[0])
	}
	if n := strings.Count(f.log.String(), "subscription declaration rejected"); n != 1 {
		t.Errorf("logged %d rejections, want 1: %s", n, f.log.String())
	}
	// The file route goes away: the declaration becomes active (logged once).
	f.r.SetRules(emptySet(t))
	if got := subNames(f.last()); !slices.Equal(got, []string{"audit/x", "audit/y"}) {
		t.Errorf("active = %v, want [audit/x audit/y]", got)
	}
	if n := strings.Count(f.log.String(), `msg="subscription active" service=audit route=audit/x`); n != 1 {
		t.Errorf("logged audit/x active %d times, want 1: %s", n, f.log.String())
	}
}

func emptySet(t *testing.T) *rules.Set {
	t.Helper()
	s, err := rules.Compile([]rules.Source{{Name: "e.yaml", Data: []byte("routes: []\n")}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRegistryIgnoresUnwatchedServices(t *testing.T) {
	f := newFixture(t, nil)
	f.r.SetCatalog([]string{"billing"})
	n := len(f.sets)
	// A late answer of audit's stopped watch.
	f.r.Update("audit", []discovery.Instance{inst("a", "x", `{"stream":"orders","match":"true"}`)})
	if len(f.sets) != n || len(f.r.Status()) != 0 {
		t.Errorf("an unwatched service's snapshot was published: %v", f.r.Status())
	}
}
