package discovery

import (
	"strings"
	"testing"
	"time"
)

// TestEmptyAnswerUnderACLDenyWithoutToken: with ACLs on and default policy
// deny, Consul answers an anonymous query with an empty list (no 403), so
// a gateway without consul.token would look ready and route nothing. The
// watcher counts that as a failed query naming the missing token; with a
// token, or with instances in the answer, or with ACLs off, an empty list
// is a real answer.
func TestEmptyAnswerUnderACLDenyWithoutToken(t *testing.T) {
	for _, tc := range []struct {
		name      string
		token     string
		aclPolicy string
		entries   int
		answered  bool
	}{
		{"deny, no token, empty", "", "deny", 0, false},
		{"deny, token, empty", "t", "deny", 0, true},
		{"deny, no token, instances", "", "deny", 1, true},
		{"allow, no token, empty", "", "allow", 0, true},
		{"ACLs off, empty", "", "", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := quietConfig()
			cfg.Token = tc.token
			w, f, _ := startFake(t, cfg, "svc")
			r := fakeReply{index: 5, aclPolicy: tc.aclPolicy}
			for i := 0; i < tc.entries; i++ {
				r.entries = append(r.entries, entry("n", "i", "10.0.0.2", 80, nil))
			}
			f.push("svc", r)
			waitFor(t, 2*time.Second, "the reply to be consumed", func() bool { return len(f.requestsFor("svc")) >= 2 })
			st := w.Status().Services["svc"]
			if w.Answered() != tc.answered {
				t.Errorf("Answered() = %v, want %v (status %+v)", w.Answered(), tc.answered, st)
			}
			if !tc.answered && !strings.Contains(st.LastError, "no consul.token") {
				t.Errorf("LastError = %q, want it to name the missing consul.token", st.LastError)
			}
		})
	}
}
