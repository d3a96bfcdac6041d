package adminapi

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/adminapi/web"
	"github.com/gatehouse/gatehouse/core"
)

// Outcomes label what a request came to, from its error's kind: the same
// words for logins, sign-ups and /verify (docs/operations.md lists them).
const (
	outcomeOK = iota
	outcomeInvalid
	outcomeUnauthorized
	outcomeForbidden
	outcomeNotFound
	outcomeConflict
	outcomeRateLimited
	outcomeUnavailable
	outcomeError
	numOutcomes
)

// outcomeNames are the outcome label values, by index.
var outcomeNames = [numOutcomes]string{"ok", "invalid", "unauthorized", "forbidden", "not_found", "conflict", "rate_limited", "unavailable", "error"}

// outcomeOf returns err's outcome. A refusal with a Retry-After (/verify's
// throttled 401) is rate_limited, like a 429.
func outcomeOf(err error) int {
	if err == nil {
		return outcomeOK
	}
	if core.RetryAfterOf(err) > 0 {
		return outcomeRateLimited
	}
	switch core.KindOf(err) {
	case core.Malformed, core.Invalid, core.TooLarge:
		return outcomeInvalid
	case core.Unauthorized:
		return outcomeUnauthorized
	case core.Forbidden:
		return outcomeForbidden
	case core.NotFound:
		return outcomeNotFound
	case core.Conflict, core.PreconditionFailed:
		return outcomeConflict
	case core.RateLimited:
		return outcomeRateLimited
	case core.Unavailable:
		return outcomeUnavailable
	}
	return outcomeError
}

// verifyKinds are the kind label values of /verify's counters: what was
// presented (core.Presented.Kind), "none" when nothing was, "unknown" for a
// bearer value of no known kind.
var verifyKinds = [...]string{
	string(core.KeyAuth), string(core.BasicAuth), string(core.JWT), string(core.KindSession), string(core.KindOAuth), "none", "unknown",
}

// Indexes into verifyKinds of the two that are not a core kind.
const (
	verifyNone    = len(verifyKinds) - 2
	verifyUnknown = len(verifyKinds) - 1
)

// verifyKindIndex returns the index of kind (core.Presented.Kind) in verifyKinds.
func verifyKindIndex(kind string) int {
	for i, k := range verifyKinds[:verifyNone] {
		if k == kind {
			return i
		}
	}
	return verifyUnknown
}

// outcomeCounters are one counter per outcome, resolved once: counting is an
// atomic add, with no label lookup.
type outcomeCounters [numOutcomes]prometheus.Counter

// newOutcomeCounters resolves every outcome of vec with the labels before it.
func newOutcomeCounters(vec *prometheus.CounterVec, labels ...string) *outcomeCounters {
	var c outcomeCounters
	for i, o := range outcomeNames {
		c[i] = vec.WithLabelValues(append(labels, o)...)
	}
	return &c
}

// count counts err's outcome.
func (c *outcomeCounters) count(err error) { c[outcomeOf(err)].Inc() }

// metrics are the counters of what users and gateways notice: /verify's
// answers by kind and outcome, logins and sign-ups by outcome. Every series
// exists from the start, at 0, so a rate over it is defined before the
// first event.
type metrics struct {
	verify  [len(verifyKinds)]*outcomeCounters
	logins  *outcomeCounters
	signups *outcomeCounters
}

// newMetrics registers the counters on reg (sharing those already there).
func newMetrics(reg prometheus.Registerer) *metrics {
	verify := web.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_verify_total",
		Help: "/verify answers by the kind of credential presented and outcome.",
	}, []string{"kind", "outcome"}))
	logins := web.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_logins_total",
		Help: "Logins at POST /auth/tokens (passwords, user secrets, redirect sign-in codes, password-checking plugins) by outcome.",
	}, []string{"outcome"}))
	signups := web.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_signups_total",
		Help: "Sign-ups at POST /auth/providers/{provider}/signup by outcome.",
	}, []string{"outcome"}))
	m := &metrics{logins: newOutcomeCounters(logins), signups: newOutcomeCounters(signups)}
	for i, k := range verifyKinds {
		m.verify[i] = newOutcomeCounters(verify, k)
	}
	return m
}

// countVerify counts one /verify answer: the kind presented (ok false when
// nothing was) and its error.
func (m *metrics) countVerify(kind string, presented bool, err error) {
	i := verifyNone
	if presented {
		i = verifyKindIndex(kind)
	}
	m.verify[i].count(err)
}

// counted returns h counting its outcome in c.
func counted(c *outcomeCounters, h web.HandlerFunc) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		err := h(w, r)
		c.count(err)
		return err
	}
}
