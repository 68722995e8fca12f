package rules

// The HTTP syntax a route must respect, checked once here for both `gateway
// check` (rule loading, path_expr results) and the dispatcher, so a path or
// method the dispatcher would refuse never passes check.

// maxPathLen bounds a request path; servers refuse longer request lines
// (8 KiB is common).
const maxPathLen = 8192

// ValidPath reports whether p can be sent as the origin-form path of a
// request to the chosen instance: it starts with "/", is not "//host..."
// (which a server may read as an authority), is at most 8 KiB, and holds no
// space, control byte or "#" (a fragment is never sent; everything after it
// would be lost).
func ValidPath(p string) bool {
	if len(p) == 0 || p[0] != '/' || (len(p) > 1 && p[1] == '/') || len(p) > maxPathLen {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c == 0x7f || c == '#' {
			return false
		}
	}
	return true
}

// maxTokenLen bounds a token (a method, an attribute's header name).
const maxTokenLen = 128

// ValidToken reports whether s is an RFC 9110 token (tchar only) of at most
// 128 bytes, as methods and header names must be.
func ValidToken(s string) bool {
	if len(s) == 0 || len(s) > maxTokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChar[s[i]] {
			return false
		}
	}
	return true
}

// tokenChar is RFC 9110's tchar set.
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

// pathRule is ValidPath's rule as error text.
const pathRule = `must start with "/" (not "//"), be at most 8 KiB and contain no spaces, control characters or "#"`
