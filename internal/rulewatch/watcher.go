package rulewatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/msgroute/gateway/rules"
)

// Config configures a Watcher.
type Config struct {
	// Path is the rules file or directory, as given to rules.Load. Required.
	Path string
	// Debounce is how long the watcher waits after the last change before it
	// reloads, so that an editor's or kubelet's burst of events causes one
	// reload. Default 200ms. A steady stream of changes still reloads at the
	// latest 4×Debounce after the first one.
	Debounce time.Duration
	// Version is the version of the set already active (loaded at startup),
	// so that Run's first load does not publish the same set again. Default
	// "": the first successful load is published.
	Version string
	// Logger receives watch problems (not reload failures, which go to
	// onError). Default: discard.
	Logger *slog.Logger
}

const defaultDebounce = 200 * time.Millisecond

// Watcher reloads a rule set when its files change. Its methods are safe for
// concurrent use.
type Watcher struct {
	cfg     Config
	publish func(*rules.Set)
	onError func(error)

	mu      sync.Mutex // serialises reloads so publishes happen in order
	version string     // of the last published set
	schemas []string   // schema files of the last published set
	watched []string   // directories watched, as last seen by Run (for tests)
}

// New returns a Watcher for cfg. publish receives every newly loaded set
// whose version differs from the last one published (the first load always
// publishes); onError receives every failed load. Both are called from Run's
// goroutine or from Reload's caller, one at a time, under the reload lock:
// they must return promptly and must not call Reload. onError may be nil.
func New(cfg Config, publish func(*rules.Set), onError func(error)) (*Watcher, error) {
	if cfg.Path == "" {
		return nil, errors.New("rulewatch: Path is required")
	}
	if publish == nil {
		return nil, errors.New("rulewatch: publish callback is required")
	}
	if cfg.Debounce < 0 {
		return nil, fmt.Errorf("rulewatch: Debounce %v is negative", cfg.Debounce)
	}
	if cfg.Debounce == 0 {
		cfg.Debounce = defaultDebounce
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if onError == nil {
		onError = func(error) {}
	}
	return &Watcher{cfg: cfg, publish: publish, onError: onError, version: cfg.Version}, nil
}

// Reload loads the rules now. On success it publishes the set if its version
// changed; on failure it calls onError, keeps the previous set, and also
// returns the error so a caller (startup, SIGHUP) can tell.
func (w *Watcher) Reload() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	set, err := rules.Load(w.cfg.Path)
	if err != nil {
		err = fmt.Errorf("reload rules %s: %w", w.cfg.Path, err)
		w.onError(err)
		return err
	}
	w.schemas = set.SchemaFiles()
	if set.Version() == w.version {
		return nil
	}
	w.version = set.Version()
	w.publish(set)
	return nil
}

// Run starts watching, loads the rules once (so a change made before the
// watch was in place is not missed), then reloads on changes until ctx is
// done. It
// watches the directory holding the rules file (or the rules directory) and
// those holding schema files, because editors replace files by renaming and
// Kubernetes swaps a ..data symlink: a watch on the file itself would be lost.
// Run returns nil when ctx is done, or an error if watching cannot start.
func (w *Watcher) Run(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("rulewatch: %w", err)
	}
	defer fw.Close()
	if err := fw.Add(w.rulesDir()); err != nil {
		return fmt.Errorf("rulewatch: watch %s: %w", w.rulesDir(), err)
	}
	w.reloadAndWatch(fw) // a failure went to onError; keep watching for a fix

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var first time.Time // first change of the pending burst; zero when none
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return errors.New("rulewatch: fsnotify closed its event channel")
			}
			if !w.relevant(ev.Name) {
				continue
			}
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			// Wait for quiet, but not past 4×Debounce after the first change.
			delay := min(w.cfg.Debounce, first.Add(4*w.cfg.Debounce).Sub(now))
			timer.Reset(max(delay, 0))
		case err, ok := <-fw.Errors:
			if !ok {
				return errors.New("rulewatch: fsnotify closed its error channel")
			}
			w.cfg.Logger.Warn("rules watch error", slog.String("path", w.cfg.Path), slog.Any("error", err))
		case <-timer.C:
			first = time.Time{}
			w.reloadAndWatch(fw)
		}
	}
}

// rulesDir is the directory to watch for the rules themselves, absolute so
// that it compares equal to schema directories (which are absolute).
func (w *Watcher) rulesDir() string {
	dir := w.cfg.Path
	if !isDir(dir) {
		dir = filepath.Dir(dir)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// reloadAndWatch reloads, then watches any directory the new set's schema
// files live in. A schema directory is only known after a load, so a change
// in it between that load and its watch would be missed: when a watch was
// added, reload once more (publishing nothing if nothing changed).
func (w *Watcher) reloadAndWatch(fw *fsnotify.Watcher) {
	for range 3 { // a set's schema directories settle after one round; bound it anyway
		_ = w.Reload() // a failure went to onError
		if !w.syncWatches(fw) {
			return
		}
	}
}

// syncWatches adds watches on the directories of the current schema files,
// and re-adds the rules directory in case it was replaced. It reports
// whether it added a watch.
func (w *Watcher) syncWatches(fw *fsnotify.Watcher) bool {
	w.mu.Lock()
	dirs := []string{w.rulesDir()}
	for _, s := range w.schemas {
		dirs = append(dirs, filepath.Dir(s))
	}
	w.mu.Unlock()
	watched := fw.WatchList()
	w.mu.Lock()
	w.watched = watched
	w.mu.Unlock()
	added := false
	for _, d := range dirs {
		if slices.Contains(watched, d) {
			continue
		}
		if err := fw.Add(d); err != nil {
			w.cfg.Logger.Warn("rules watch error", slog.String("path", d), slog.Any("error", err))
			continue
		}
		added = true
	}
	if added {
		w.mu.Lock()
		w.watched = fw.WatchList()
		w.mu.Unlock()
	}
	return added
}

// watchedDirs reports the directories Run watches.
func (w *Watcher) watchedDirs() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.watched
}

// relevant filters out events that cannot change the rule set, such as
// editors' swap files. Kept: rules and schema files, and Kubernetes'
// ..data-style entries, whose swap changes what every symlink points to.
func (w *Watcher) relevant(name string) bool {
	base := filepath.Base(name)
	switch {
	case strings.HasPrefix(base, ".."):
		return true
	case strings.HasPrefix(base, "."):
		return false
	case base == filepath.Base(w.cfg.Path):
		return true
	}
	ext := filepath.Ext(base)
	return ext == ".yaml" || ext == ".json"
}
