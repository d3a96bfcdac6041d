package storetest

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/core"
)

// testLimiter: a rate of 3 a minute allows 3 events and refuses the 4th with a
// retry delay; asking (n = 0) never counts, and at the limit answers no, as
// ReadAuth's Throttle does; keys are independent.
func testLimiter(t *testing.T, h Harness) {
	if h.NewLimiter == nil {
		t.Skip("storetest: Harness.NewLimiter is not set")
	}
	e := newEnv(t, h)
	l := h.NewLimiter(t, e.s)
	rate := core.Rate{Count: 3, Per: time.Minute}
	allow := func(key string, n int) (bool, time.Duration) {
		t.Helper()
		ok, retry, err := l.Allow(e.ctx, key, rate, n)
		e.must(err)
		if ok && retry != 0 {
			t.Errorf("Allow(%s, %d) allowed with retryAfter %v", key, n, retry)
		}
		return ok, retry
	}
	u := e.createUser("throttled")
	throttle := func(key string) time.Duration {
		t.Helper()
		r, err := e.s.ReadAuth(e.ctx, core.AuthQuery{UserID: u.ID, Throttles: []core.Throttle{{Key: key, Rate: rate}}})
		e.must(err)
		return r.RetryAfter
	}
	if d := throttle("login:bob"); d != 0 {
		t.Errorf("ReadAuth's Throttle on a fresh key: RetryAfter %v, want 0", d)
	}
	for range 5 {
		if ok, _ := allow("login:bob", 0); !ok {
			t.Fatal("asking (n = 0) on a fresh key is refused")
		}
	}
	for i := range 3 {
		if ok, _ := allow("login:bob", 1); !ok {
			t.Fatalf("event %d of 3 a minute refused (the asks counted?)", i+1)
		}
	}
	ok, retry := allow("login:bob", 1)
	if ok || retry <= 0 || retry > time.Minute {
		t.Fatalf("4th event of 3 a minute: allowed %v, retryAfter %v; want refused with 0 < retryAfter <= 1m", ok, retry)
	}
	ok, retry = allow("login:bob", 0)
	if ok || retry <= 0 {
		t.Errorf("asking at the limit: allowed %v, retryAfter %v; want refused with retryAfter > 0", ok, retry)
	}
	if d := throttle("login:bob"); d <= 0 || d > time.Minute {
		t.Errorf("ReadAuth's Throttle at the limit: RetryAfter %v, want 0 < RetryAfter <= 1m", d)
	}
	if d := throttle("login:alice"); d != 0 {
		t.Errorf("ReadAuth's Throttle on another key: RetryAfter %v, want 0", d)
	}
	if ok, _ := allow("login:alice", 1); !ok {
		t.Error("another key is limited by bob's events")
	}
	if ok, _ := allow("login:alice", 0); !ok || throttle("login:alice") != 0 {
		t.Error("asking after 1 event of 3 a minute is refused")
	}
	if ok, _ := allow("login:alice", 2); !ok {
		t.Error("2 events after 1 of 3 a minute refused")
	}
	if ok, _ := allow("login:alice", 1); ok {
		t.Error("a 4th event (counted 1 + 2) allowed")
	}
	if ok, _ := allow("login:alice", 0); ok || throttle("login:alice") <= 0 {
		t.Error("asking after 3 events of 3 a minute is allowed")
	}
	_, _, err := l.Allow(e.ctx, "bad", core.Rate{}, 1)
	wantKind(t, err, core.Invalid, "Allow with a zero rate")
}
