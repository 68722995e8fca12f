package discovery

import (
	"bytes"
	"log/slog"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// RouteAPILogs sends the Consul API client's own log lines (for example
// about an unparsable CONSUL_HTTP_SSL) to log as warnings with the message
// "consul client" and the line under "text", in the gateway's log format.
// The client logs through hclog loggers it creates itself (api.NewClient
// makes one of its own), so this sets hclog's process-wide default output:
// the last call wins.
func RouteAPILogs(log *slog.Logger) {
	hclog.DefaultOutput = &lineLog{log: log}
}

// lineLog turns each line written to it into one slog record.
type lineLog struct {
	log *slog.Logger
	mu  sync.Mutex
	buf []byte
}

func (w *lineLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		if line := bytes.TrimSpace(w.buf[:i]); len(line) > 0 {
			w.log.Warn("consul client", "text", string(line))
		}
		w.buf = w.buf[i+1:]
	}
}
