package rulewatch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/msgroute/gateway/rules"
)

func rulesYAML(service string) string {
	return fmt.Sprintf("routes:\n  - name: r\n    match: 'true'\n    service: %s\n", service)
}

// recorder collects what the watcher publishes and rejects.
type recorder struct {
	mu       sync.Mutex
	services []string
	errs     int
}

func (r *recorder) publish(s *rules.Set) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.services = append(r.services, s.Routes()[0].Service)
}

func (r *recorder) fail(error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs++
}

func (r *recorder) last() (string, int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.services) == 0 {
		return "", 0, r.errs
	}
	return r.services[len(r.services)-1], len(r.services), r.errs
}

func startWatcher(t *testing.T, path string, rec *recorder) *Watcher {
	t.Helper()
	w, err := New(Config{Path: path, Debounce: 50 * time.Millisecond}, rec.publish, rec.fail)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Reload(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	// fsnotify's watch is in place once Run has added it; a write seen by
	// a Reload proves nothing, so give Run a moment via a probe write.
	return w
}

func write(t *testing.T, p, body string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReloadOnChange(t *testing.T) {
	cases := []struct {
		name   string
		change func(t *testing.T, dir, path string, n int)
	}{
		{"write in place", func(t *testing.T, dir, path string, n int) {
			write(t, path, rulesYAML(fmt.Sprintf("svc%d", n)))
		}},
		{"write then rename", func(t *testing.T, dir, path string, n int) {
			tmp := filepath.Join(dir, ".rules.yaml.swp")
			write(t, tmp, rulesYAML(fmt.Sprintf("svc%d", n)))
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "rules.yaml")
			write(t, path, rulesYAML("svc0"))
			rec := &recorder{}
			startWatcher(t, path, rec)
			for n := 1; n <= 3; n++ {
				want := fmt.Sprintf("svc%d", n)
				// Repeat the change until seen: the first may race Run's Add.
				waitUntilRetry(t, want, func() { c.change(t, dir, path, n) }, func() bool {
					got, _, _ := rec.last()
					return got == want
				})
			}
		})
	}
}

// waitUntilRetry applies change, then waits up to 1s for cond; the change is
// re-applied once if the watcher may not have been watching yet.
func waitUntilRetry(t *testing.T, what string, change func(), cond func() bool) {
	t.Helper()
	for attempt := 0; attempt < 3; attempt++ {
		change()
		deadline := time.Now().Add(time.Second)
		for time.Now().Before(deadline) {
			if cond() {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Fatalf("reload to %s not seen within 1s", what)
}

func TestReloadOnKubernetesSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	mkData := func(n int) string {
		d := filepath.Join(dir, fmt.Sprintf("..2026_%02d", n))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(d, "rules.yaml"), rulesYAML(fmt.Sprintf("svc%d", n)))
		return filepath.Base(d)
	}
	if err := os.Symlink(mkData(0), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "rules.yaml")
	if err := os.Symlink("..data/rules.yaml", path); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	startWatcher(t, path, rec)
	for n := 1; n <= 2; n++ {
		want := fmt.Sprintf("svc%d", n)
		target := mkData(n)
		waitUntilRetry(t, want, func() {
			// Atomic swap as the kubelet does: new symlink, rename over ..data.
			tmp := filepath.Join(dir, "..data_tmp")
			_ = os.Remove(tmp)
			if err := os.Symlink(target, tmp); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
				t.Fatal(err)
			}
		}, func() bool { got, _, _ := rec.last(); return got == want })
	}
}

func TestInvalidRulesKeepPrevious(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	write(t, path, rulesYAML("good"))
	rec := &recorder{}
	startWatcher(t, path, rec)
	waitUntilRetry(t, "a rejected reload", func() { write(t, path, "routes:\n  - name: r\n    match: 'headers.x >'\n") },
		func() bool { _, _, errs := rec.last(); return errs > 0 })
	if got, n, _ := rec.last(); got != "good" || n != 1 {
		t.Fatalf("after invalid file: last published %q (%d publishes), want only the good set", got, n)
	}
}

func TestReloadIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	write(t, path, rulesYAML("a"))
	rec := &recorder{}
	w, err := New(Config{Path: path}, rec.publish, rec.fail)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := w.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	if _, n, _ := rec.last(); n != 1 {
		t.Fatalf("3 reloads of unchanged rules published %d times, want 1", n)
	}
}

func TestDirectoryOfFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.yaml"), rulesYAML("a"))
	rec := &recorder{}
	startWatcher(t, dir, rec)
	waitUntilRetry(t, "new file in the directory", func() {
		write(t, filepath.Join(dir, "a.yaml"), rulesYAML("b"))
	}, func() bool { got, _, _ := rec.last(); return got == "b" })
}
