package balancer

import (
	"errors"
	"testing"
	"time"

	"github.com/msgroute/gateway/discovery"
)

// TestPickAmongDeclaringInstances: a subscription route asks for the
// instances declaring its value by listing the declaration key as a tag;
// Pick chooses only among them, without allocating once the subset is
// cached, and a changed declaration takes effect with the next snapshot.
func TestPickAmongDeclaringInstances(t *testing.T) {
	b, _ := newTestBalancer(t, Config{}, 0)
	insts := instances(4)
	v1 := discovery.Declaration{Name: "trail", Value: `{"v":1}`, Key: discovery.DeclarationKey("trail", `{"v":1}`)}
	v2 := discovery.Declaration{Name: "trail", Value: `{"v":2}`, Key: discovery.DeclarationKey("trail", `{"v":2}`)}
	insts[1].Declarations = []discovery.Declaration{v1}
	insts[2].Declarations = []discovery.Declaration{v1}
	insts[3].Declarations = []discovery.Declaration{v2}
	b.Update("svc", insts)

	seen := map[string]int{}
	for i := 0; i < 200; i++ {
		e := mustPick(t, b, []string{v1.Key}, nil)
		seen[e.ID()]++
		b.Done(e, Success, time.Millisecond)
	}
	if len(seen) != 2 || seen["i1"] == 0 || seen["i2"] == 0 {
		t.Errorf("picks for v1 = %v, want only i1 and i2, both", seen)
	}
	if e := mustPick(t, b, []string{v2.Key}, nil); e.ID() != "i3" {
		t.Errorf("pick for v2 = %s, want i3", e.ID())
	} else {
		b.Done(e, Success, time.Millisecond)
	}
	allocs := testing.AllocsPerRun(100, func() {
		e, _ := b.Pick("svc", []string{v1.Key}, nil)
		b.Done(e, Success, time.Millisecond)
	})
	if allocs > 0 {
		t.Errorf("Pick with a declaration key allocates %v times per call", allocs)
	}

	// i3 now declares v1 too; nobody declares v2.
	insts[3].Declarations = []discovery.Declaration{v1}
	b.Update("svc", insts)
	if _, err := b.Pick("svc", []string{v2.Key}, nil); !errors.Is(err, ErrNoInstances) {
		t.Errorf("pick for an undeclared value: err = %v, want ErrNoInstances", err)
	}
	seen = map[string]int{}
	for i := 0; i < 300; i++ {
		e := mustPick(t, b, []string{v1.Key}, nil)
		seen[e.ID()]++
		b.Done(e, Success, time.Millisecond)
	}
	if len(seen) != 3 || seen["i0"] != 0 {
		t.Errorf("picks for v1 after the change = %v, want i1, i2 and i3", seen)
	}
}
