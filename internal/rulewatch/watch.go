// Package rulewatch hot-reloads the rule set: it watches the rules path
// with fsnotify (in-place writes, editors' write-then-rename, and
// Kubernetes-style ..data symlink swaps), debounces bursts of events,
// rebuilds the set off the hot path with rules.Load and hands a new set to
// publish only when its version changed. A set that fails to load goes to
// onError and the previous one stays active.
package rulewatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/msgroute/gateway/rules"
)

// Config configures a Watcher.
type Config struct {
	Path string // rules file or directory; required
	// Debounce is how long the watcher waits after the last event before
	// reloading, so an editor's burst of writes is one reload. Default 200ms.
	Debounce time.Duration
	// Version is the version of the set already active; a reload producing
	// the same version publishes nothing. Default "" (publish the first load).
	Version string
	Logger  *slog.Logger // default slog.Default()
}

// Watcher reloads rules. Reload is safe for concurrent use with Run.
type Watcher struct {
	cfg     Config
	publish func(*rules.Set)
	onError func(error)

	mu      sync.Mutex // serialises reloads
	version string
}

// New returns a Watcher; publish receives each new valid set, onError each
// rejected reload. Both are called from the reloading goroutine.
func New(cfg Config, publish func(*rules.Set), onError func(error)) (*Watcher, error) {
	if cfg.Path == "" {
		return nil, errors.New("rulewatch: no path")
	}
	if publish == nil || onError == nil {
		return nil, errors.New("rulewatch: publish and onError are required")
	}
	if cfg.Debounce == 0 {
		cfg.Debounce = 200 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Watcher{cfg: cfg, publish: publish, onError: onError, version: cfg.Version}, nil
}

// Reload loads the rules now: publishes a changed valid set, reports an
// invalid one. It returns the load error, if any.
func (w *Watcher) Reload() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	set, err := rules.Load(w.cfg.Path)
	if err != nil {
		w.onError(err)
		return err
	}
	if set.Version() == w.version {
		return nil
	}
	w.version = set.Version()
	w.publish(set)
	return nil
}

// Run watches until ctx is done. It watches the directory holding the
// rules file (or the rules directory itself), because editors and
// Kubernetes replace files rather than write them, which a watch on the
// file alone would lose.
func (w *Watcher) Run(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("rulewatch: %w", err)
	}
	defer fw.Close()
	dir := w.cfg.Path
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		dir = filepath.Dir(dir)
	}
	if err := fw.Add(dir); err != nil {
		return fmt.Errorf("rulewatch: watch %s: %w", dir, err)
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			timer.Reset(w.cfg.Debounce)
		case err, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			w.cfg.Logger.Warn("rules watch error", "err", err)
			timer.Reset(w.cfg.Debounce) // events may have been lost: reload to be safe
		case <-timer.C:
			_ = w.Reload() // outcome reported through publish / onError
		}
	}
}
