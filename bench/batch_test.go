package main

import (
	"testing"
	"time"

	"github.com/msgroute/gateway/internal/workload"
	"github.com/msgroute/gateway/rules"
)

// TestWithBatch: every realistic route gets the batch mapping and a path
// under batchPathPrefix, and the rules still compile.
func TestWithBatch(t *testing.T) {
	spec := batchSpec(options{batchMsgs: 100, batchWait: 5 * time.Millisecond})
	set, err := rules.Compile([]rules.Source{{Name: "rules.yaml", Data: withBatch(workload.RulesYAML(100, "svc", 1), spec)}})
	if err != nil {
		t.Fatalf("batch rules do not compile: %v", err)
	}
	for _, r := range set.Routes() {
		if r.Name == "reload-gen-1" {
			continue // the never-matching marker route has no path
		}
		if r.Batch == nil || r.Batch.MaxMessages != 100 || r.Batch.MaxWait != 5*time.Millisecond || r.Path != batchPathPrefix+r.Name {
			t.Errorf("route %s: batch %+v path %s, want {100 5ms} and %s%s", r.Name, r.Batch, r.Path, batchPathPrefix, r.Name)
		}
	}
	if got := withBatch([]byte("x\n    path: /r1\n"), ""); string(got) != "x\n    path: /r1\n" {
		t.Errorf("withBatch without a spec changed the rules: %q", got)
	}
}
