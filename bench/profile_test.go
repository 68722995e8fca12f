package main

import (
	"strings"
	"testing"
)

func TestGoPackage(t *testing.T) {
	tests := []struct{ sym, want string }{
		{"github.com/valyala/fasthttp.(*HostClient).Do", "github.com/valyala/fasthttp"},
		{"runtime.memmove", "runtime"},
		{"internal/runtime/maps.(*Map).putSlotSmallFastStr", "internal/runtime/maps"},
		{"github.com/msgroute/gateway/router.(*Router).start.func1", "github.com/msgroute/gateway/router"},
		{"noDot", "noDot"},
	}
	for _, tt := range tests {
		if got := goPackage(tt.sym); got != tt.want {
			t.Errorf("goPackage(%q) = %q, want %q", tt.sym, got, tt.want)
		}
	}
}

func TestByPackage(t *testing.T) {
	const rep = `# header
     3.00%  [kernel.kallsyms]  [k] tcp_sendmsg
     2.00%  gateway            [.] runtime.memmove
     1.00%  gateway            [.] runtime.step
     1.50%  gateway            [.] github.com/valyala/fasthttp.setArg
`
	got := byPackage(rep)
	for _, want := range []string{"3.00%  runtime", "3.00%  [kernel.kallsyms]", "1.50%  github.com/valyala/fasthttp"} {
		if !strings.Contains(got, want) {
			t.Errorf("byPackage lacks %q:\n%s", want, got)
		}
	}
}
