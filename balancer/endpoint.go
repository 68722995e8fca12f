package balancer

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/msgroute/gateway/discovery"
)

// instKey identifies an instance within a service. Consul service IDs are
// unique per agent only, so the node is part of the key.
type instKey struct{ node, id string }

// endpointInfo is the immutable description of an instance, swapped as a
// whole when a snapshot changes an instance's address, tags or weight.
type endpointInfo struct {
	inst discovery.Instance
	addr string
}

// Endpoint is one instance of a service together with its long-lived
// statistics. Endpoints are created by Update and handed out by Pick; they
// stay valid after the instance leaves the pool (Done on them is fine).
// All methods are safe for concurrent use.
type Endpoint struct {
	svc  *service
	key  instKey
	info atomic.Pointer[endpointInfo]

	inflight atomic.Int64

	// Latency estimate in nanoseconds (float64 bits) as of stamp. Written
	// under mu by Done, read without locking by Pick: a torn read of the
	// pair only skews one decay computation.
	mu    sync.Mutex
	est   atomic.Uint64
	stamp atomic.Int64 // balancer clock, ns
	load  float64      // decayed count of completions as of stamp; guarded by mu
	// avg is a plain moving average of latency samples (ns, float64 bits),
	// avgWeight per sample. Unlike the peak estimate it does not grow with
	// the number of samples, so it tells whether two instances are alike
	// whatever their traffic. Written under mu, read without locking.
	avg atomic.Uint64

	consecFail   atomic.Int32
	ejectedUntil atomic.Int64 // balancer clock, ns; ejected while now < ejectedUntil
	ejections    atomic.Int32 // consecutive ejections, for the growing ejection time
	rampStart    atomic.Int64 // slow start began here; noRamp when not ramping

	// Guarded by svc.mu.
	inPool    bool
	removedAt int64
}

// noRamp marks an endpoint that never ramps (first snapshot).
const noRamp = math.MinInt64 / 2

// Addr is the instance's "host:port".
func (e *Endpoint) Addr() string { return e.info.Load().addr }

// ID is the instance's Consul service ID.
func (e *Endpoint) ID() string { return e.key.id }

// Instance is the instance as last published by discovery. Do not modify
// its Tags.
func (e *Endpoint) Instance() discovery.Instance { return e.info.Load().inst }

// latency is the decayed latency estimate at now, in nanoseconds. Between
// samples the estimate decays toward zero, as in Finagle: an instance that
// has not been used for a while looks cheaper and is probed again.
func (e *Endpoint) latency(now int64, tau float64) float64 {
	est := math.Float64frombits(e.est.Load())
	if est == 0 {
		return 0
	}
	dt := now - e.stamp.Load()
	if dt <= 0 {
		return est
	}
	return est * decay(dt, tau)
}

// decay is exp(-dt/tau), computed cheaply: it runs twice per Pick. Busy
// endpoints are read microseconds after their last sample, where a
// second-order Taylor step is exact to 1e-10; otherwise expNeg is within
// 1e-6 relative, ample for a load-balancing heuristic and several times
// cheaper than math.Exp.
func decay(dt int64, tau float64) float64 {
	x := float64(dt) / tau
	if x < 1e-3 {
		return 1 - x + x*x/2
	}
	return expNeg(x)
}

// expNeg is exp(-x) for x >= 0: 2^-k * exp(-t) with k = floor(x/ln 2) and
// t in [0, ln 2), exp(-t) by its Taylor series to t^8.
func expNeg(x float64) float64 {
	if x > 700 {
		return 0
	}
	k := math.Floor(x * math.Log2E)
	t := x - k*math.Ln2
	p := 1 - t*(1-t*(1.0/2-t*(1.0/6-t*(1.0/24-t*(1.0/120-t*(1.0/720-t*(1.0/5040-t/40320)))))))
	return math.Float64frombits(math.Float64bits(p) - uint64(k)<<52)
}

// observe folds a latency sample x (ns) taken at now into the peak-EWMA:
// a sample above the decayed estimate replaces it, a lower one is averaged
// in with a weight that grows with the time since the previous sample.
func (e *Endpoint) observe(now int64, x, tau float64) {
	e.mu.Lock()
	est := math.Float64frombits(e.est.Load())
	dt := now - e.stamp.Load()
	if dt < 0 {
		dt = 0
	}
	w := decay(dt, tau)
	if cur := est * w; x >= cur {
		est = x
	} else {
		est = cur*w + x*(1-w)
	}
	e.load = e.load*w + 1
	if avg := math.Float64frombits(e.avg.Load()); avg == 0 {
		e.avg.Store(math.Float64bits(x))
	} else {
		e.avg.Store(math.Float64bits(avg + (x-avg)*avgWeight))
	}
	e.est.Store(math.Float64bits(est))
	e.stamp.Store(now)
	e.mu.Unlock()
}

// avgWeight is the weight of one sample in Endpoint.avg. At 1/32 the
// average of an instance with log-normal latencies (sigma 0.5) wanders by
// about 7%, well inside tieSlack; one sample ten times the usual moves it
// past tieSlack, and so do two failures (recorded as at least five times
// the usual).
const avgWeight = 1.0 / 32

// recentLoad is the decayed completion count at now.
func (e *Endpoint) recentLoad(now int64, tau float64) float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	dt := now - e.stamp.Load()
	if dt <= 0 {
		return e.load
	}
	return e.load * decay(dt, tau)
}

func (e *Endpoint) ejected(now int64) bool { return now < e.ejectedUntil.Load() }

// rampFactor is the slow-start multiplier of the weight at now, in (0, 1].
func (e *Endpoint) rampFactor(now, slowStart int64) float64 {
	if slowStart <= 0 {
		return 1
	}
	d := now - e.rampStart.Load()
	if d >= slowStart {
		return 1
	}
	if d < 0 {
		d = 0
	}
	return minRamp + (1-minRamp)*float64(d)/float64(slowStart)
}

// minRamp is the weight share a new instance starts its slow start with.
const minRamp = 0.1
