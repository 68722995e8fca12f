package health

import (
	"context"
	"embed"
	"io/fs"
	"path"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// assets is the status page: an HTML shell, its stylesheet and script.
// They hold no data (the script fetches it from the JSON endpoints with
// the admin token), so they are served without the token.
//
//go:embed assets/index.html assets/status.css assets/status.js
var assets embed.FS

// maxDeadLetters bounds /deadletters?limit=N.
const maxDeadLetters = 1000

// defaultDeadLetters is /deadletters' limit when none is given: what the
// status page shows.
const defaultDeadLetters = 20

// assetType is the Content-Type of an embedded asset.
func assetType(name string) string {
	switch path.Ext(name) {
	case ".css":
		return "text/css; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	default:
		return "text/html; charset=utf-8"
	}
}

// statusAsset serves GET / (the page) and GET /assets/NAME; it reports
// whether path was one of them.
func statusAsset(c *fasthttp.RequestCtx, p string) bool {
	var name string
	switch {
	case p == "/" || p == "/index.html":
		name = "assets/index.html"
	case path.Dir(p) == "/assets":
		name = "assets/" + path.Base(p)
	default:
		return false
	}
	b, err := fs.ReadFile(assets, name)
	if err != nil {
		return false
	}
	if !c.IsGet() && !c.IsHead() {
		c.Response.Header.Set("Allow", "GET, HEAD")
		writeJSON(c, fasthttp.StatusMethodNotAllowed, map[string]string{"error": "use GET"})
		return true
	}
	h := &c.Response.Header
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
	c.SetContentType(assetType(name))
	c.SetBody(b)
	return true
}

// AssetBytes is the total size of the status page's embedded assets (the
// bytes a browser loads for the page, before any data).
func AssetBytes() int {
	n := 0
	_ = fs.WalkDir(assets, "assets", func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += int(info.Size())
			}
		}
		return nil
	})
	return n
}

// deadLetters answers GET /deadletters?limit=N (default 20, at most 1000):
// {"entries":[...]} newest first.
func (s *Server) deadLetters(c *fasthttp.RequestCtx) {
	limit := defaultDeadLetters
	if v := c.QueryArgs().Peek("limit"); v != nil {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 || n > maxDeadLetters {
			writeJSON(c, fasthttp.StatusBadRequest, map[string]string{
				"error": "limit: must be an integer from 1 to " + strconv.Itoa(maxDeadLetters) + ", got " + strconv.Quote(string(v))})
			return
		}
		limit = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	entries, err := s.src.DeadLetters(ctx, limit)
	if err != nil {
		s.cfg.Logger.Warn("read dead letters", "err", err)
		writeJSON(c, fasthttp.StatusServiceUnavailable, map[string]string{"error": "read dead letters: " + err.Error()})
		return
	}
	writeJSON(c, 200, map[string]any{"entries": entries})
}
