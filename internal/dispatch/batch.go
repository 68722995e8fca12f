package dispatch

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// BatchConfig configures a BatchClient.
type BatchConfig struct {
	// Timeout is a request's timeout when the call gives none; default 5s.
	Timeout time.Duration
	// MaxConnsPerHost bounds connections per instance; default 32. A
	// request finding all of them busy waits for one within its timeout.
	MaxConnsPerHost int
	// MaxResponseBytes bounds an answer's body; default 4 MiB (the
	// statuses of 1000 entries take ~80 KB). A larger one fails the
	// request.
	MaxResponseBytes int
}

// BatchClient posts batch requests (a JSON document of many entries) to
// instances, one fasthttp.HostClient per instance address. It implements
// router.BatchSender. Safe for concurrent use.
type BatchClient struct {
	cfg   BatchConfig
	hosts sync.Map // addr -> *fasthttp.HostClient
}

// NewBatchClient returns a BatchClient with cfg's defaults filled.
func NewBatchClient(cfg BatchConfig) (*BatchClient, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxConnsPerHost == 0 {
		cfg.MaxConnsPerHost = 32
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = 4 << 20
	}
	if cfg.Timeout < 0 || cfg.MaxConnsPerHost < 0 || cfg.MaxResponseBytes < 0 {
		return nil, fmt.Errorf("dispatch: negative setting in %+v", cfg)
	}
	return &BatchClient{cfg: cfg}, nil
}

// host returns addr's client, creating it on first use. Idle connections
// close after maxIdle; a client of an instance gone for good keeps only
// its (empty) struct.
func (c *BatchClient) host(addr string) *fasthttp.HostClient {
	if hc, ok := c.hosts.Load(addr); ok {
		return hc.(*fasthttp.HostClient)
	}
	hc, _ := c.hosts.LoadOrStore(addr, &fasthttp.HostClient{
		Addr:                addr,
		Name:                "msgroute-gateway",
		MaxConns:            c.cfg.MaxConnsPerHost,
		MaxIdleConnDuration: maxIdle,
		MaxResponseBodySize: c.cfg.MaxResponseBytes,
		// A batch is sent again only when its connection was found closed
		// before any answer (a keep-alive connection the instance had
		// dropped): every entry carries its Idempotency-Key, and the
		// router retries anything else itself.
		MaxIdemponentCallAttempts: 2,
		RetryIfErr: func(_ *fasthttp.Request, _ int, err error) (bool, bool) {
			return false, errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, io.EOF)
		},
	})
	return hc.(*fasthttp.HostClient)
}

// DoBatch sends body to addr as METHOD path with Content-Type
// application/json and returns the status and a copy of the answer's body.
// timeout 0 takes the configured one. A non-nil error is a transport
// failure (refused, reset, timeout, answer too large) or a method or path
// that would not address the instance (ErrBadPath).
func (c *BatchClient) DoBatch(addr, method, path string, timeout time.Duration, body []byte) (int, []byte, error) {
	if !validPath(path) || !validToken(method) {
		return 0, nil, fmt.Errorf("%s %q: %w", method, path, ErrBadPath)
	}
	if timeout <= 0 {
		timeout = c.cfg.Timeout
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI(path)
	req.Header.SetHost(addr)
	req.Header.SetContentType("application/json")
	req.SetBodyRaw(body)
	if err := c.host(addr).DoTimeout(req, resp, timeout); err != nil {
		return 0, nil, fmt.Errorf("%s %s batch: %w", method, addr, err)
	}
	return resp.StatusCode(), append([]byte(nil), resp.Body()...), nil
}
