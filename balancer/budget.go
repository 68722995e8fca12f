package balancer

import "sync/atomic"

// retryBudget counts first attempts and retries in one-second windows and
// admits a retry while retries over the last second (current window plus
// the unexpired share of the previous one) stay within
// ratio * requests + minPerSecond. Counters are atomics: the rare race at a
// window change may lose a count, which a budget can afford.
type retryBudget struct {
	win [2]budgetWindow
}

type budgetWindow struct {
	epoch   atomic.Int64 // window number (seconds on the balancer clock)
	reqs    atomic.Int64
	retries atomic.Int64
}

const second = int64(1e9)

// current returns the window for now, resetting a slot left from an
// older second.
func (r *retryBudget) current(now int64) *budgetWindow {
	idx := max(now, 0) / second
	w := &r.win[idx&1]
	if old := w.epoch.Load(); old != idx && w.epoch.CompareAndSwap(old, idx) {
		w.reqs.Store(0)
		w.retries.Store(0)
	}
	return w
}

func (r *retryBudget) request(now int64) { r.current(now).reqs.Add(1) }

func (r *retryBudget) allow(now int64, ratio, minPerSecond float64) bool {
	now = max(now, 0)
	cur := r.current(now)
	idx := now / second
	reqs, retries := float64(cur.reqs.Load()), float64(cur.retries.Load())
	if prev := &r.win[(idx-1)&1]; prev.epoch.Load() == idx-1 {
		rest := 1 - float64(now%second)/float64(second)
		reqs += rest * float64(prev.reqs.Load())
		retries += rest * float64(prev.retries.Load())
	}
	if retries+1 > ratio*reqs+minPerSecond {
		return false
	}
	cur.retries.Add(1)
	return true
}
