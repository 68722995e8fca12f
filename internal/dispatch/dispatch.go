// Package dispatch is the HTTP adapter: it turns one routed message into one
// fasthttp request to one chosen instance and reports the answer. It never
// retries and never picks instances: the router does both.
package dispatch

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/msgroute/gateway/rules"
)

// Config configures the HTTP client.
type Config struct {
	// Timeout is the per-attempt timeout when a request has none; default 5s.
	Timeout time.Duration
	// MaxConnsPerHost bounds connections per instance; default 32. Once
	// all of them are busy, further requests are pipelined on them (HTTP/1.1)
	// instead of dialing more: an instance serves at most this many
	// requests at once. Unbounded dialing fed a spiral under a burst: slower
	// answers, more requests in flight, more connections dialed (CPU on both
	// sides), slower answers; bench runs at half load showed p99 52 ms with
	// 512 and 15 ms with 32. Fewer connections with deeper pipelines cost
	// less CPU per message but add queueing delay (see hostPool).
	MaxConnsPerHost int
	// MaxResponseBytes bounds a response body kept for request-reply;
	// default 1 MiB. Larger answers fail the attempt.
	MaxResponseBytes int
}

// Request is one attempt to deliver a message over one route.
type Request struct {
	Addr    string // instance host:port
	Method  string
	Path    string // starts with "/"
	Route   string
	Msg     *rules.Message
	Attempt int // 1-based, X-Delivery-Attempt
	Timeout time.Duration
	// KeepBody asks for the response body (request-reply).
	KeepBody bool
}

// Result is an instance's answer.
type Result struct {
	Status      int
	Body        []byte // only with KeepBody
	ContentType string // only with KeepBody
	// Dropped counts attributes not forwarded because their name or value
	// is not a valid HTTP header.
	Dropped int
}

// ErrBadPath means the resolved path would not address the chosen
// instance (it failed to parse or named another host).
var ErrBadPath = errors.New("path does not address the instance")

// Dispatcher sends requests. Safe for concurrent use.
type Dispatcher struct {
	cfg Config
	// hosts maps an instance address to its *hostPool (its
	// connection pool). fasthttp.Client would find the pool from the
	// request's URI under a lock shared by every request; the router
	// already knows the address.
	hosts sync.Map
	// sweepMu serializes sweeps; lastSweep is when the last one ran.
	sweepMu   sync.Mutex
	lastSweep atomic.Int64
}

// sweepEvery is how often pools of instances that hold no connection are
// forgotten, so a churning fleet does not grow the map for ever.
const sweepEvery = time.Minute

// New returns a Dispatcher with cfg's defaults filled.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxConnsPerHost == 0 {
		cfg.MaxConnsPerHost = 32
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = 1 << 20
	}
	if cfg.Timeout < 0 || cfg.MaxConnsPerHost < 0 || cfg.MaxResponseBytes < 0 {
		return nil, fmt.Errorf("dispatch: negative setting in %+v", cfg)
	}
	d := &Dispatcher{cfg: cfg}
	d.lastSweep.Store(time.Now().UnixNano())
	return d, nil
}

// host returns addr's connection pool, creating it on first use.
func (d *Dispatcher) host(addr string) *hostPool {
	if hp, ok := d.hosts.Load(addr); ok {
		return hp.(*hostPool)
	}
	hp, _ := d.hosts.LoadOrStore(addr, newHostPool(addr, d.cfg.MaxConnsPerHost, d.cfg.MaxResponseBytes, maxIdle))
	return hp.(*hostPool)
}

var userAgent = []byte("msgroute-gateway")

// maxIdle is how long a connection may sit unused before it is closed.
const maxIdle = 30 * time.Second

// sweep closes connections idle for longer than maxIdle and forgets the
// pools left without any (their instances are gone or idle). Every Do
// calls it; it runs at most once per sweepEvery. A pool forgotten while
// in use is simply created again.
func (d *Dispatcher) sweep(now time.Time) {
	if now.UnixNano()-d.lastSweep.Load() < int64(sweepEvery) || !d.sweepMu.TryLock() {
		return
	}
	defer d.sweepMu.Unlock()
	d.lastSweep.Store(now.UnixNano())
	d.hosts.Range(func(k, v any) bool {
		if v.(*hostPool).closeIdle(now) == 0 {
			d.hosts.CompareAndDelete(k, v)
		}
		return true
	})
}

// Do sends r and waits for the answer or the timeout. A non-nil error is a
// transport failure (connection refused, reset, timeout) or ErrBadPath.
func (d *Dispatcher) Do(r *Request) (Result, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)

	dropped, err := build(req, r)
	if err != nil {
		return Result{Dropped: dropped}, err
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = d.cfg.Timeout
	}
	now := time.Now()
	d.sweep(now)
	req.Header.SetUserAgentBytes(userAgent)
	if err := d.host(r.Addr).do(req, resp, now.Add(timeout)); err != nil {
		return Result{Dropped: dropped}, fmt.Errorf("%s %s: %w", r.Method, r.Addr, err)
	}
	res := Result{Status: resp.StatusCode(), Dropped: dropped}
	if r.KeepBody {
		res.Body = append([]byte(nil), resp.Body()...)
		res.ContentType = string(resp.Header.ContentType())
	}
	return res, nil
}

// build fills req from r: method, URI on the chosen instance, body and the
// CONTRACT's headers. It returns how many attributes were not forwarded.
func build(req *fasthttp.Request, r *Request) (int, error) {
	m := r.Msg
	if !validPath(r.Path) {
		return 0, fmt.Errorf("%q: %w", r.Path, ErrBadPath)
	}
	// URI and idempotency key are assembled in a stack buffer: fasthttp
	// copies them, and string concatenation would allocate twice a request.
	var scratch [256]byte
	b := append(append(append(scratch[:0], "http://"...), r.Addr...), r.Path...)
	req.SetRequestURIBytes(b)
	if string(req.URI().Host()) != r.Addr {
		return 0, fmt.Errorf("%q: %w", r.Path, ErrBadPath)
	}
	req.Header.SetMethod(r.Method)
	req.SetBodyString(m.Payload)
	h := &req.Header
	dropped := 0
	// content_type and correlation_id come from the stream's writers like
	// attributes do; a value a strict server would reject falls back to the
	// default instead of getting the message dead-lettered as a 400.
	ct, corr := m.ContentType, m.CorrelationID
	if !validValue(ct) {
		ct, dropped = "application/octet-stream", dropped+1
	}
	if !validValue(corr) {
		corr, dropped = m.ID, dropped+1
	}
	h.SetContentType(ct)
	// The request is fresh and these names are distinct and canonical:
	// Add appends without searching the headers set so far.
	h.Add("X-Message-Id", m.ID)
	h.Add("X-Stream", m.Stream)
	h.Add("X-Route", r.Route)
	h.Add("X-Correlation-Id", corr)
	b = append(append(append(append(append(b[:0], m.Stream...), '/'), m.ID...), '/'), r.Route...)
	h.AddBytesV("Idempotency-Key", b)
	b = strconv.AppendInt(b[:0], int64(r.Attempt), 10)
	h.AddBytesV("X-Delivery-Attempt", b)
	name := scratch[:0] // the URI and key are copied by now: reuse the buffer
	for k, v := range m.Headers {
		if !validToken(k) || !validValue(v) {
			dropped++
			continue
		}
		name = appendAttrHeader(name[:0], k)
		h.SetBytesKV(name, []byte(v))
	}
	return dropped, nil
}

// validPath accepts an origin-form path: it starts with "/", is not
// "//host" (authority form) and has no bytes that could split the request
// line.
func validPath(p string) bool {
	if len(p) == 0 || p[0] != '/' || (len(p) > 1 && p[1] == '/') || len(p) > 8192 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c == 0x7f || c == '#' {
			return false
		}
	}
	return true
}

// appendAttrHeader renders attribute k as X-Msg-K in canonical form
// (order_id -> X-Msg-Order_id, region -> X-Msg-Region).
func appendAttrHeader(dst []byte, k string) []byte {
	dst = append(dst, "X-Msg-"...)
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
		upper = c == '-'
	}
	return dst
}

// validToken reports whether s is an RFC 9110 token of sane length.
func validToken(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChar[s[i]] {
			return false
		}
	}
	return true
}

// validValue rejects CR, LF, NUL and other control bytes (HTAB allowed),
// and values over 8 KiB.
func validValue(s string) bool {
	if len(s) > 8<<10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
