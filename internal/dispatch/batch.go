package dispatch

import (
	"errors"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/msgroute/gateway/router"
	"github.com/msgroute/gateway/rules"
)

// errAnswerTooLarge is a batch answer longer than MaxResponseBytes: its
// statuses cannot be read, so the request failed.
var errAnswerTooLarge = errors.New("batch answer larger than the kept response size")

// DoBatch sends one batch request (router.BatchSender): body, a JSON
// document, goes to addr as METHOD path with Content-Type
// application/json, on the instance's HostClient like single requests,
// and the status and a copy of the answer's body come back. timeout 0
// takes Config.Timeout. A non-nil error is a transport failure (refused,
// reset, timeout, an answer over MaxResponseBytes) or, wrapped,
// router.ErrBadPath. As for Do, a request is resent once only when its
// connection was found closed before any answer byte (resendIf).
func (d *Dispatcher) DoBatch(addr, method, path string, timeout time.Duration, body []byte) (int, []byte, error) {
	if !rules.ValidPath(path) || !rules.ValidToken(method) {
		return 0, nil, fmt.Errorf("%s %q: %w", method, path, router.ErrBadPath)
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	h := &req.Header
	h.SetMethod(method)
	h.SetHost(clean(addr))
	req.SetRequestURI(path)
	req.URI().DisablePathNormalizing = true
	h.SetContentType("application/json")
	req.SetBodyRaw(body)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	resp.StreamBody = true // read within MaxResponseBytes by keep
	if timeout <= 0 {
		timeout = d.cfg.Timeout
	}
	now := time.Now()
	d.sweep(now)
	if err := d.client(addr).DoDeadline(req, resp, now.Add(timeout)); err != nil {
		return 0, nil, fmt.Errorf("%s %s batch: %w", method, addr, err)
	}
	answer, cut := d.keep(resp)
	if cut {
		return 0, nil, fmt.Errorf("%s %s batch: %w", method, addr, errAnswerTooLarge)
	}
	return resp.StatusCode(), answer, nil
}
