package rulewatch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/msgroute/gateway/rules"
)

// reloadDeadline is the contract's bound on how soon a change is live.
const reloadDeadline = time.Second

// rulesYAML is a one-route rules file; the route is named after the service
// so that several files can be merged in a directory.
func rulesYAML(service string) string {
	return fmt.Sprintf("routes:\n  - name: to-%s\n    service: %s\n", service, service)
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// harness runs a Watcher and exposes what it publishes and rejects.
type harness struct {
	w         *Watcher
	published chan *rules.Set
	errs      chan error
}

func start(t *testing.T, cfg Config) *harness {
	t.Helper()
	// Buffers far larger than any test needs: the callbacks run under the
	// watcher's reload lock and must not block.
	h := &harness{published: make(chan *rules.Set, 1024), errs: make(chan error, 1024)}
	if cfg.Debounce == 0 {
		cfg.Debounce = 50 * time.Millisecond
	}
	w, err := New(cfg, func(s *rules.Set) { h.published <- s }, func(err error) { h.errs <- err })
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.w = w
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v, want nil after cancel", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return h
}

// service waits for the next published set and returns its first route's
// service. Failed reloads on the way are ignored: an in-place write can be
// observed half done (the file truncated but not yet written), which the
// watcher rightly rejects before the completed write is seen.
func (h *harness) service(t *testing.T) string {
	t.Helper()
	deadline := time.After(reloadDeadline)
	for {
		select {
		case s := <-h.published:
			return s.Routes()[0].Service
		case <-h.errs:
		case <-deadline:
			t.Fatalf("no reload within %v", reloadDeadline)
		}
	}
}

func (h *harness) wantService(t *testing.T, want string) {
	t.Helper()
	if got := h.service(t); got != want {
		t.Fatalf("published set with service %q, want %q", got, want)
	}
}

// noPublish checks that nothing is published for a while. It is the one
// place a test waits without a condition: absence can only be observed over
// time, and it bounds nothing about correctness.
func (h *harness) noPublish(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case s := <-h.published:
		t.Fatalf("unexpected publish of version %s", s.Version())
	case <-time.After(d):
	}
}

func TestReloadOnChange(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, path, service string)
	}{
		{"write in place", func(t *testing.T, path, service string) {
			write(t, path, rulesYAML(service))
		}},
		{"write then rename", func(t *testing.T, path, service string) {
			tmp := filepath.Join(filepath.Dir(path), ".rules.yaml.tmp")
			write(t, tmp, rulesYAML(service))
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"remove and recreate", func(t *testing.T, path, service string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			write(t, path, rulesYAML(service))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rules.yaml")
			write(t, path, rulesYAML("svc0"))
			h := start(t, Config{Path: path})
			h.wantService(t, "svc0") // Run's first load: the watch is in place
			for n := 1; n <= 3; n++ {
				want := fmt.Sprintf("svc%d", n)
				tt.change(t, path, want)
				h.wantService(t, want)
			}
		})
	}
}

func TestReloadOnKubernetesSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	// The kubelet's layout: rules.yaml -> ..data/rules.yaml, ..data -> ..<timestamp>.
	version := func(n int) string {
		name := fmt.Sprintf("..2026_01_01_00_00_%02d.000000001", n)
		write(t, filepath.Join(dir, name, "rules.yaml"), rulesYAML(fmt.Sprintf("svc%d", n)))
		return name
	}
	if err := os.Symlink(version(0), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "rules.yaml")
	if err := os.Symlink(filepath.Join("..data", "rules.yaml"), path); err != nil {
		t.Fatal(err)
	}
	h := start(t, Config{Path: path})
	h.wantService(t, "svc0")
	for n := 1; n <= 2; n++ {
		old, _ := os.Readlink(filepath.Join(dir, "..data"))
		target := version(n)
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(target, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			t.Fatal(err)
		}
		h.wantService(t, fmt.Sprintf("svc%d", n))
	}
}

func TestDirectory(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.yaml"), rulesYAML("a"))
	h := start(t, Config{Path: dir})
	h.wantService(t, "a")

	write(t, filepath.Join(dir, "0-first.yaml"), rulesYAML("zero"))
	if got := h.service(t); got != "zero" { // file name order: 0-first.yaml first
		t.Fatalf("after adding a file: first route's service %q, want zero", got)
	}
	if err := os.Remove(filepath.Join(dir, "0-first.yaml")); err != nil {
		t.Fatal(err)
	}
	h.wantService(t, "a")
}

func TestInvalidRulesKeepPrevious(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	write(t, path, rulesYAML("good"))
	h := start(t, Config{Path: path})
	h.wantService(t, "good")

	write(t, path, "routes:\n  - name: r\n    service: s\n    match: 'headers.x >'\n")
	deadline := time.After(reloadDeadline)
	for reported := false; !reported; {
		select {
		case err := <-h.errs:
			// Skip a reload that saw the file truncated mid-write.
			var le *rules.LoadError
			reported = errors.As(err, &le) && len(le.Problems) > 0 && le.Problems[0].Line == 4
		case s := <-h.published:
			t.Fatalf("invalid rules published as version %s", s.Version())
		case <-deadline:
			t.Fatal("invalid rules (line 4) not reported within the deadline")
		}
	}
	// Fixing the file back to the active contents publishes nothing: the
	// good set never stopped being active.
	write(t, path, rulesYAML("good"))
	h.noPublish(t, 300*time.Millisecond)
	write(t, path, rulesYAML("better"))
	h.wantService(t, "better")
}

func TestSchemaChangeReloads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	schema := filepath.Join(dir, "schemas", "s.json")
	write(t, schema, `{"type": "object"}`)
	write(t, path, "routes:\n  - {name: r, service: s, schema: schemas/s.json}\n")
	h := start(t, Config{Path: path})
	first := <-h.published
	write(t, schema, `{"type": "object", "required": ["id"]}`)
	select {
	case s := <-h.published:
		if s.Version() == first.Version() {
			t.Fatal("schema change published the same version")
		}
	case err := <-h.errs:
		t.Fatal(err)
	case <-time.After(reloadDeadline):
		t.Fatal("schema change not reloaded within the deadline")
	}
}

func TestReloadForSIGHUP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	write(t, path, rulesYAML("a"))
	// A debounce far beyond the test makes Reload the only way to reload.
	h := start(t, Config{Path: path, Debounce: time.Hour})
	h.wantService(t, "a")

	if err := h.w.Reload(); err != nil {
		t.Fatalf("Reload of unchanged rules = %v", err)
	}
	h.noPublish(t, 50*time.Millisecond)

	write(t, path, rulesYAML("b"))
	if err := h.w.Reload(); err != nil {
		t.Fatalf("Reload = %v", err)
	}
	h.wantService(t, "b")

	write(t, path, "routes: [")
	if err := h.w.Reload(); err == nil {
		t.Fatal("Reload of invalid rules = nil, want an error")
	}
	if err := <-h.errs; err == nil {
		t.Fatal("onError got nil")
	}
}

func TestVersionSkipsStartupSet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	write(t, path, rulesYAML("a"))
	set, err := rules.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	h := start(t, Config{Path: path, Version: set.Version()})
	h.noPublish(t, 200*time.Millisecond)
	write(t, path, rulesYAML("b"))
	h.wantService(t, "b")
}

func TestConcurrentReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	write(t, path, rulesYAML("a"))
	h := start(t, Config{Path: path, Debounce: time.Millisecond})
	h.wantService(t, "a")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			write(t, path, rulesYAML(fmt.Sprintf("w%d", i)))
		}
	}()
	for range 20 {
		_ = h.w.Reload() // a write may be caught half done: then onError
	}
	<-done
	write(t, path, rulesYAML("final"))
	deadline := time.After(reloadDeadline)
	for {
		select {
		case s := <-h.published:
			if len(s.Routes()) == 1 && s.Routes()[0].Service == "final" {
				return
			}
		case <-h.errs:
		case <-deadline:
			t.Fatal("final contents not published within the deadline")
		}
	}
}

func TestNewValidates(t *testing.T) {
	pub := func(*rules.Set) {}
	tests := []struct {
		name    string
		cfg     Config
		publish func(*rules.Set)
	}{
		{"no path", Config{}, pub},
		{"no publish", Config{Path: "x"}, nil},
		{"negative debounce", Config{Path: "x", Debounce: -time.Second}, pub},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg, tt.publish, nil); err == nil {
			t.Errorf("New(%s) = nil error, want one", tt.name)
		}
	}
}

func TestRelativePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	write(t, "rules.yaml", "routes:\n  - {name: r, service: a, schema: s.json}\n")
	write(t, "s.json", `{"type": "object"}`)
	h := start(t, Config{Path: "rules.yaml"})
	h.wantService(t, "a")
	write(t, "rules.yaml", "routes:\n  - {name: r, service: b, schema: s.json}\n")
	h.wantService(t, "b")
	if got := len(h.w.watchedDirs()); got != 1 {
		t.Errorf("watching %d directories, want 1 (rules and schema share it)", got)
	}
}
