package retention

import (
	"math"
	"testing"
	"time"
)

func TestParseID(t *testing.T) {
	cases := []struct {
		in      string
		want    streamID
		wantErr bool
	}{
		{"0-0", streamID{0, 0}, false},
		{"1700000000000-5", streamID{1700000000000, 5}, false},
		{"42", streamID{42, 0}, false},
		{"18446744073709551615-18446744073709551615", maxID, false},
		{"x-1", streamID{}, true},
		{"1-y", streamID{}, true},
		{"", streamID{}, true},
	}
	for _, c := range cases {
		got, err := parseID(c.in)
		if (err != nil) != c.wantErr || (err == nil && got != c.want) {
			t.Errorf("parseID(%q) = %v, %v; want %v, error %v", c.in, got, err, c.want, c.wantErr)
		}
	}
}

func TestIDOrderAndNext(t *testing.T) {
	cases := []struct {
		name string
		in   streamID
		next streamID
	}{
		{"sequence", streamID{5, 1}, streamID{5, 2}},
		{"zero", streamID{0, 0}, streamID{0, 1}},
		{"sequence overflow", streamID{5, math.MaxUint64}, streamID{6, 0}},
	}
	for _, c := range cases {
		if got := c.in.next(); got != c.next {
			t.Errorf("%s: %v.next() = %v, want %v", c.name, c.in, got, c.next)
		}
		if !c.in.less(c.in.next()) || c.in.next().less(c.in) {
			t.Errorf("%s: %v is not less than its next", c.name, c.in)
		}
	}
	if got := minID(streamID{7, 3}, streamID{7, 2}); got != (streamID{7, 2}) {
		t.Errorf("minID = %v, want 7-2", got)
	}
	if got := (streamID{1, 9}).String(); got != "1-9" {
		t.Errorf("String() = %q, want 1-9", got)
	}
}

func TestIDAge(t *testing.T) {
	now := time.UnixMilli(10_000)
	cases := []struct {
		id   streamID
		want time.Duration
	}{
		{streamID{7_500, 3}, 2500 * time.Millisecond},
		{streamID{10_000, 0}, 0},
		{streamID{12_000, 0}, 0}, // in the future
		{maxID, 0},
	}
	for _, c := range cases {
		if got := c.id.age(now); got != c.want {
			t.Errorf("%v.age(10s) = %s, want %s", c.id, got, c.want)
		}
	}
	if got := idAt(now.Add(-time.Second)); got != (streamID{9_000, 0}) {
		t.Errorf("idAt = %v, want 9000-0", got)
	}
}
