package core_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/core"
)

// gatedStore holds UserByName until its gate opens, so that a test can see
// what a mail request does before the address is looked up.
type gatedStore struct {
	core.Store
	mu   sync.Mutex
	gate chan struct{}
}

func (s *gatedStore) shut() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = make(chan struct{})
}

func (s *gatedStore) open() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
}

func (s *gatedStore) UserByName(ctx context.Context, kind core.NameKind, value string) (core.User, error) {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return core.User{}, ctx.Err()
		}
	}
	return s.Store.UserByName(ctx, kind, value)
}

// drain waits for the mails sent off the request path.
func (e *svcEnv) drain() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), 10*time.Second)
	defer cancel()
	if err := e.svc.Drain(ctx); err != nil {
		e.t.Fatalf("Drain: %v", err)
	}
}

// within runs f and fails the test if it has not returned within a bound far
// above any normal answer (the test machine is busy): it proves f does not wait
// for something that never comes, not how fast it is.
func within(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not answer while the mail could not go out", what)
		return nil
	}
}

// TestMailAnswersAlike: resend and password reset answer a known address and
// an unknown one the same way, without waiting for the lookup or the mail, and
// with the same Redis work on the request path; the known user still gets its
// mail afterwards, and the unknown address none.
func TestMailAnswersAlike(t *testing.T) {
	gated := &gatedStore{}
	e := newSvcEnv(t, svcOptions{
		wrap: func(s core.Store) core.Store { gated.Store = s; return gated },
		policy: func(p *core.Policy) {
			p.MailPerAddress = core.Rate{Count: 1000, Per: time.Hour}
			p.MailPerEmail = core.Rate{Count: 1000, Per: time.Hour}
		},
	})
	e.user("tess@example.com") // admin-created: its email is not verified
	verified := e.user("vera@example.com")
	if _, err := e.store.UpdateUser(t.Context(), verified.ID, func(u *core.User) error { u.EmailVerified = true; return nil }); err != nil {
		t.Fatal(err)
	}
	off := e.user("otto@example.com")
	if _, err := e.svc.SetUserStatus(t.Context(), off.ID, false); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		ask  func(context.Context, core.MailAsk) error
		kind string
		// the addresses that get a mail, of tess, vera, otto and nobody
		want []sentMail
	}{
		{"password reset", e.svc.RequestPasswordReset, "reset", []sentMail{{"reset", "tess@example.com"}, {"reset", "vera@example.com"}}},
		{"resend", e.svc.ResendVerification, "verify", []sentMail{{"verify", "tess@example.com"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The first request loads the limiter's script: not compared.
			if err := tt.ask(t.Context(), core.MailAsk{Provider: "email", Email: "warm-up@example.com", ClientAddr: "192.0.2.99"}); err != nil {
				t.Fatal(err)
			}
			e.drain()
			before := len(e.mail.sent())
			gated.shut()
			e.mail.shut()
			var answers []string
			var trips [][]string
			for i, addr := range []string{"tess@example.com", "vera@example.com", "otto@example.com", "nobody@example.com"} {
				var err error
				trips = append(trips, e.trips.during(func() {
					err = within(t, tt.name+" for "+addr, func() error {
						return tt.ask(t.Context(), core.MailAsk{Provider: "email", Email: addr, ClientAddr: fmt.Sprintf("192.0.2.%d", i+1)})
					})
				}))
				answers = append(answers, fmt.Sprint(err))
			}
			for i := range answers {
				if answers[i] != "<nil>" || answers[i] != answers[0] {
					t.Errorf("answers differ or fail: %q", answers)
					break
				}
				if d := cmp.Diff(trips[0], trips[i]); d != "" {
					t.Errorf("request %d: Redis round trips differ from the first's (-first +this):\n%s", i, d)
				}
			}
			if n := len(e.mail.sent()); n != before {
				t.Errorf("%d mails went out before the lookup and the send were let through", n-before)
			}
			gated.open()
			e.mail.open()
			e.drain()
			got := e.mail.sent()[before:]
			slices.SortFunc(got, func(a, b sentMail) int { return strings.Compare(a.Email, b.Email) }) // sent concurrently
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("mails (-want +got):\n%s", d)
			}
		})
	}
	if errs := e.reported.get(); len(errs) != 0 {
		t.Errorf("errors reported: %v", errs)
	}
}

// TestMailFailuresReported: a mail that fails, or takes longer than the mail
// timeout, is reported through Options.ReportError, without a secret, and the
// answer is the same 202-style nil as ever.
func TestMailFailuresReported(t *testing.T) {
	e := newSvcEnv(t, svcOptions{mailTimeout: 200 * time.Millisecond})
	e.user("tess@example.com")
	ask := core.MailAsk{Provider: "email", Email: "tess@example.com", ClientAddr: "192.0.2.1"}

	e.mail.failWith(core.Errorf(core.Unavailable, "plugin", "smtp server said no"))
	if err := e.svc.RequestPasswordReset(t.Context(), ask); err != nil {
		t.Fatalf("answer with a failing mail: %v", err)
	}
	e.drain()
	e.mail.failWith(nil)
	e.mail.shut() // never opens: the send must give up by itself
	if err := within(t, "a reset", func() error { return e.svc.RequestPasswordReset(t.Context(), ask) }); err != nil {
		t.Fatalf("answer with a stuck mail: %v", err)
	}
	e.drain() // bounded by the mail timeout, not by the gate
	e.mail.open()
	errs := e.reported.get()
	if len(errs) != 2 {
		t.Fatalf("reported %d errors, want 2: %v", len(errs), errs)
	}
	if !strings.Contains(errs[0].Error(), "smtp server said no") || core.KindOf(errs[0]) != core.Unavailable {
		t.Errorf("a failed mail reported as %v (kind %v)", errs[0], core.KindOf(errs[0]))
	}
	if !strings.Contains(errs[1].Error(), "deadline exceeded") {
		t.Errorf("a stuck mail reported as %v", errs[1])
	}
	for _, err := range errs {
		if strings.Contains(err.Error(), "token=") {
			t.Errorf("a reported error shows a link: %v", err)
		}
	}
	if n := len(e.mail.sent()); n != 0 {
		t.Errorf("%d mails sent", n)
	}
}

// TestMailRatesCountUnknownAddresses: the mail limits count an address whether
// or not it has an account, so the 429 comes at the same request for both.
func TestMailRatesCountUnknownAddresses(t *testing.T) {
	e := newSvcEnv(t, svcOptions{policy: func(p *core.Policy) {
		p.MailPerAddress = core.Rate{Count: 1000, Per: time.Hour}
		p.MailPerEmail = core.Rate{Count: 3, Per: time.Hour}
	}})
	e.user("tess@example.com")
	seq := func(email string) []string {
		var out []string
		for range 5 {
			err := e.svc.RequestPasswordReset(t.Context(), core.MailAsk{Provider: "email", Email: email, ClientAddr: "192.0.2.9"})
			out = append(out, fmt.Sprintf("%v retry=%v", core.KindOf(err), core.RetryAfterOf(err) > 0))
			if err != nil && core.KindOf(err) != core.RateLimited {
				t.Fatalf("reset for %s: %v", email, err)
			}
		}
		return out
	}
	known, unknown := seq("tess@example.com"), seq("nobody@example.com")
	if d := cmp.Diff(known, unknown); d != "" {
		t.Errorf("answers (-known +unknown):\n%s", d)
	}
	if !strings.HasPrefix(known[3], core.RateLimited.String()) {
		t.Errorf("the 4th mail of 3 an hour: %s", known[3])
	}
	e.drain()
	if n := len(e.mail.sent()); n != 3 {
		t.Errorf("%d mails sent to the known address, want 3", n)
	}
}
