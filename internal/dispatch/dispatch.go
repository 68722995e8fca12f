package dispatch

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/msgroute/gateway/router"
)

// Config configures the HTTP client. Zero fields take the defaults stated.
type Config struct {
	// Timeout is the per-attempt timeout when a request has none; default
	// 5s. It bounds the wait for a connection, the write and the answer.
	Timeout time.Duration
	// MaxConnsPerHost bounds connections per instance; default 32. A
	// request that finds all of them busy waits for one, within its
	// attempt's timeout (fasthttp's MaxConnWaitTimeout), so an instance
	// serves at most this many requests at once. Unbounded dialing fed a
	// spiral under a burst (more connections, more CPU on both sides,
	// slower answers); bench runs at half load showed p99 52 ms with 512
	// and 15 ms with 32.
	MaxConnsPerHost int
	// MaxIdleConnDuration closes a connection unused for this long;
	// default 10s (fasthttp's). A connection the server closed earlier is
	// found out on use and the request resent once (see resendIf).
	MaxIdleConnDuration time.Duration
	// MaxResponseBytes bounds the response body kept for request-reply;
	// default 1 MiB. A larger body is cut to this size and the Result
	// says so (Truncated); the answer still counts by its status.
	MaxResponseBytes int
}

// discardBytes bounds a body read only to be dropped (no reply wanted).
// Smaller bodies are read off the connection, which is then reused; a
// larger one closes the connection instead of being read: one dial is
// cheaper than megabytes nobody wants. Either way the status counts.
const discardBytes = 64 << 10

// forgetAfter is how long an instance's client stays in the map unused; a
// churning fleet must not grow it forever. sweepEvery is how often Do
// looks for such clients.
const (
	forgetAfter = 5 * time.Minute
	sweepEvery  = time.Minute
)

// maxSends bounds the sends of one request on one instance: the first and
// one resend when resendIf allows it. An instance that closes connections
// without answering (crashing, or closing a request it did read) gets each
// request at most twice, and the Idempotency-Key is the same both times.
const maxSends = 2

// Dispatcher sends requests. Safe for concurrent use.
type Dispatcher struct {
	cfg Config
	// hosts maps an instance address to its *fasthttp.HostClient. A
	// sync.Map: the hot path is a read of a key written once.
	hosts sync.Map
	// sweepMu serializes sweeps; lastSweep is when the last one ran.
	sweepMu   sync.Mutex
	lastSweep atomic.Int64
}

// New returns a Dispatcher with cfg's defaults filled.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxConnsPerHost == 0 {
		cfg.MaxConnsPerHost = 32
	}
	if cfg.MaxIdleConnDuration == 0 {
		cfg.MaxIdleConnDuration = fasthttp.DefaultMaxIdleConnDuration
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = 1 << 20
	}
	if cfg.Timeout < 0 || cfg.MaxConnsPerHost < 0 || cfg.MaxIdleConnDuration < 0 || cfg.MaxResponseBytes < 0 {
		return nil, fmt.Errorf("dispatch: negative setting in %+v", cfg)
	}
	d := &Dispatcher{cfg: cfg}
	d.lastSweep.Store(time.Now().UnixNano())
	return d, nil
}

// client returns addr's HostClient, creating it on first use.
func (d *Dispatcher) client(addr string) *fasthttp.HostClient {
	if c, ok := d.hosts.Load(addr); ok {
		return c.(*fasthttp.HostClient)
	}
	c, _ := d.hosts.LoadOrStore(addr, &fasthttp.HostClient{
		Addr:                addr,
		Name:                "msgroute-gateway",
		MaxConns:            d.cfg.MaxConnsPerHost,
		MaxIdleConnDuration: d.cfg.MaxIdleConnDuration,
		// Past any attempt's timeout: fasthttp waits min(this, the
		// request's remaining time), so the attempt's deadline bounds it.
		MaxConnWaitTimeout:            24 * time.Hour,
		MaxResponseBodySize:           discardBytes, // streamed bodies (KeepBody) ignore it
		MaxIdemponentCallAttempts:     maxSends,
		RetryIfErr:                    resendIf,
		DisablePathNormalizing:        true, // send the path the rules resolved
		DisableHeaderNamesNormalizing: true,
	})
	return c.(*fasthttp.HostClient)
}

// sweep forgets the clients unused for forgetAfter that hold no
// connection (their instances are gone or idle). Every Do calls it; it
// runs at most once per sweepEvery. A client forgotten while in use keeps
// working and is simply created again on the next request.
func (d *Dispatcher) sweep(now time.Time) {
	if now.UnixNano()-d.lastSweep.Load() < int64(sweepEvery) || !d.sweepMu.TryLock() {
		return
	}
	defer d.sweepMu.Unlock()
	d.lastSweep.Store(now.UnixNano())
	d.hosts.Range(func(k, v any) bool {
		if c := v.(*fasthttp.HostClient); now.Sub(c.LastUseTime()) > forgetAfter && c.ConnsCount() == 0 {
			d.hosts.CompareAndDelete(k, v)
		}
		return true
	})
}

// Do sends r and waits for the answer or the timeout, counted from r.Start
// (or from now when it is zero). A non-nil error is a
// transport failure (connection refused, reset, timeout) or, wrapped,
// router.ErrBadPath. An answer whose body is larger than kept is still an
// answer: Result.Truncated is set.
func (d *Dispatcher) Do(r *router.Request) (router.Result, error) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	dropped, err := build(req, r)
	res := router.Result{Dropped: dropped}
	if err != nil {
		return res, err
	}
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	// A kept body is streamed so that it can be cut at MaxResponseBytes
	// without failing the answer; a dropped one is read (or the connection
	// closed) within discardBytes.
	resp.StreamBody = r.KeepBody
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = d.cfg.Timeout
	}
	start := r.Start
	if start.IsZero() {
		start = time.Now()
	}
	d.sweep(start)
	err = d.client(r.Addr).DoDeadline(req, resp, start.Add(timeout))
	switch {
	case err == nil:
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		// The status line and headers were read; only the body, which
		// nobody wants, was over discardBytes.
		res.Truncated = true
	default:
		return res, fmt.Errorf("%s %s: %w", r.Method, r.Addr, err)
	}
	res.Status = resp.StatusCode()
	if r.KeepBody {
		res.ContentType = string(resp.Header.ContentType())
		var cut bool
		res.Body, cut = d.keep(resp)
		res.Truncated = res.Truncated || cut
	}
	return res, nil
}

// keep copies resp's body, at most MaxResponseBytes of it, and reports
// whether it was cut (longer, or broken off after the status was read).
// A body read to its end leaves the connection for reuse; a cut one
// closes it.
func (d *Dispatcher) keep(resp *fasthttp.Response) ([]byte, bool) {
	s := resp.BodyStream()
	if s == nil {
		return append([]byte(nil), resp.Body()...), false
	}
	defer resp.CloseBodyStream()
	limit := d.cfg.MaxResponseBytes
	body, err := io.ReadAll(io.LimitReader(s, int64(limit)+1))
	if len(body) > limit {
		return body[:limit], true
	}
	return body, err != nil
}

// resendIf is the HostClient's RetryIfErr: it allows resending a request
// only when the instance cannot have processed it, that is when the
// connection was found closed before any byte of an answer came back (the
// server closed a keep-alive connection: EOF or a reset before the first
// byte) or the request could not be written on it. A timeout is never
// resent: the instance may be working on it, and the router decides
// whether to try elsewhere. Each send goes on another connection.
func resendIf(_ *fasthttp.Request, _ int, err error) (resetTimeout, retry bool) {
	return false, unanswered(err)
}

// unanswered reports whether err shows a request that got no answer byte
// on a connection found closed: fasthttp reports any failure of the first
// read as io.EOF, except a timeout (ErrTimeout), and a failed write as the
// connection's write error.
func unanswered(err error) bool {
	if err == io.EOF { //nolint:errorlint // fasthttp returns it bare for "nothing read"
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "write" && !op.Timeout()
}
