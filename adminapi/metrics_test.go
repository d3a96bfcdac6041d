package adminapi

import (
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/core"
)

// TestOutcomeOf: each error kind has one outcome label, and a refusal with a
// Retry-After is rate_limited whatever its kind.
func TestOutcomeOf(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{core.Errorf(core.Invalid, "t", "x"), "invalid"},
		{core.Errorf(core.Malformed, "t", "x"), "invalid"},
		{core.Errorf(core.Unauthorized, "t", "x"), "unauthorized"},
		{&core.Error{Kind: core.Unauthorized, Op: "t", RetryAfter: time.Second}, "rate_limited"},
		{core.Errorf(core.RateLimited, "t", "x"), "rate_limited"},
		{core.Errorf(core.Forbidden, "t", "x"), "forbidden"},
		{core.Errorf(core.Conflict, "t", "x"), "conflict"},
		{core.Errorf(core.Unavailable, "t", "x"), "unavailable"},
		{errors.New("plain"), "error"},
	}
	for _, tt := range tests {
		if got := outcomeNames[outcomeOf(tt.err)]; got != tt.want {
			t.Errorf("outcomeOf(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
	for _, k := range verifyKinds[:verifyNone] {
		if verifyKinds[verifyKindIndex(k)] != k {
			t.Errorf("kind %s indexes %s", k, verifyKinds[verifyKindIndex(k)])
		}
	}
	if verifyKindIndex("") != verifyUnknown {
		t.Error("an unrecognised bearer is not unknown")
	}
}

// TestVerifyMetricsKinds: a success is counted under the kind its principal
// reports, for every credential type, so the kind label of a refusal (read
// from what was presented) and of a success (what verified) agree.
func TestVerifyMetricsKinds(t *testing.T) {
	e := newEnv(t)
	f := newVerifyFixture(e)
	e.must(204, "PUT", "/users/vic/password", `{"password":"correct horse"}`)
	_, session := e.login("email", "vic", "correct horse")
	for _, c := range []struct{ kind, header, value string }{
		{"key-auth", "x-api-key", f.keyID + ":" + f.keySecret},
		{"basic-auth", "Authorization", basicAuth("vic", f.basicPass)},
		{"session", "Authorization", "Bearer " + session},
	} {
		req := httptest.NewRequest("GET", "/verify", nil)
		req.Header.Set(c.header, c.value)
		w := httptest.NewRecorder()
		e.public.ServeHTTP(w, req)
		if w.Code != 200 {
			t.Fatalf("%s: %d %s", c.kind, w.Code, w.Body)
		}
		if got := counterValue(t, e.srv.reg, "gatehouse_verify_total", "kind", c.kind, "outcome", "ok"); got != 1 {
			t.Errorf("%s successes counted: %v", c.kind, got)
		}
	}
}

// counterValue returns the value of the counter name with those labels
// (name, value pairs) in reg.
func counterValue(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				for i := 0; i+1 < len(labels); i += 2 {
					if l.GetName() == labels[i] && l.GetValue() != labels[i+1] {
						continue series
					}
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no series %s%q", name, labels)
	return 0
}

// BenchmarkCountVerify is what /verify's metrics add to each request: the
// kind's index and the error's outcome, then one atomic add on a counter
// resolved at start.
func BenchmarkCountVerify(b *testing.B) {
	m := newMetrics(prometheus.NewRegistry())
	p := core.Presented{Scheme: core.SchemeAPIKey, ID: "k", Secret: "s"}
	refused := core.Errorf(core.Unauthorized, "b", "invalid credentials")
	b.Run("ok", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.countVerify(p.Kind(), true, nil)
		}
	})
	b.Run("refused", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.countVerify(p.Kind(), true, refused)
		}
	})
}
