package web

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/gatehouse/gatehouse/core"
)

func TestStatusKindRoundTrip(t *testing.T) {
	for k := core.Internal; k <= core.Unavailable; k++ {
		err := core.Errorf(k, "test", "x")
		if got := core.KindOf(&core.Error{Kind: KindOfStatus(StatusOf(err))}); got != k {
			t.Errorf("kind %v → status %d → kind %v", k, StatusOf(err), got)
		}
	}
}

// keys are the admin keys the test site knows, by their plain text.
var keys = map[string]core.AdminKey{
	"k-admin":     {ID: "1", Name: "root", Scope: core.ScopeAdmin},
	"k-read":      {ID: "2", Name: "auditor", Scope: core.ScopeRead},
	"k-publicala": {ID: "3", Name: "pla", Scope: core.ScopePublicala},
	"k-qloud":     {ID: "4", Name: "q", Scope: core.ScopeQloud},
}

func testSite(logs *bytes.Buffer) *Site {
	return NewSite(Options{
		Log: zerolog.New(logs).Level(zerolog.DebugLevel),
		Authenticate: func(_ context.Context, k string) (core.AdminKey, error) {
			if ak, ok := keys[k]; ok {
				return ak, nil
			}
			return core.AdminKey{}, core.Errorf(core.Unauthorized, "test", "invalid admin key")
		},
	})
}

func ok(w http.ResponseWriter, _ *http.Request) error {
	return WriteJSON(w, 200, map[string]bool{"ok": true})
}

// TestGuards: an admin key opens everything; a read key only the native API's
// GETs; a dialect key its dialect's routes and nothing else, also from the
// dialect's own header.
func TestGuards(t *testing.T) {
	var logs bytes.Buffer
	l := testSite(&logs).Listener("admin")
	rs := l.Routes(Problem)
	rs.Handle(Native, "GET", "/users", ok)
	rs.Handle(Native, "POST", "/users", ok)
	rs.Handle(AdminOnly, "GET", "/admin-keys", ok)
	rs.Handle(Dialect(core.ScopePublicala, "X-User-Token"), "GET", "/integration-api/v1/dashboard/users", ok)
	rs.Handle(Dialect(core.ScopeQloud), "GET", "/.q/api/management/users/:id", ok)
	rs.Handle(Open, "GET", "/healthz", ok)
	h := l.Handler()
	tests := []struct {
		method, path, header, key string
		want                      int
	}{
		{"GET", "/users", "x-api-key", "k-admin", 200},
		{"POST", "/users/", "Authorization", "Bearer k-admin", 200},
		{"GET", "/users", "x-api-key", "k-read", 200},
		{"POST", "/users", "x-api-key", "k-read", 403},
		{"GET", "/admin-keys", "x-api-key", "k-read", 403},
		{"GET", "/admin-keys", "x-api-key", "k-admin", 200},
		{"GET", "/integration-api/v1/dashboard/users", "X-User-Token", "k-publicala", 200},
		{"GET", "/integration-api/v1/dashboard/users/", "x-api-key", "k-publicala", 200},
		{"GET", "/integration-api/v1/dashboard/users", "X-User-Token", "k-admin", 200},
		{"GET", "/integration-api/v1/dashboard/users", "X-User-Token", "k-qloud", 403},
		{"GET", "/integration-api/v1/dashboard/users", "X-User-Token", "k-read", 403},
		{"GET", "/users", "X-User-Token", "k-publicala", 401}, // the header opens its dialect only
		{"GET", "/users", "x-api-key", "k-publicala", 403},
		{"GET", "/admin-keys", "x-api-key", "k-publicala", 403},
		{"GET", "/.q/api/management/users/7", "Authorization", "k-qloud", 200},
		{"GET", "/.q/api/management/users/7", "Authorization", "k-publicala", 403},
		{"GET", "/users", "x-api-key", "wrong", 401},
		{"GET", "/users", "", "", 401},
		{"GET", "/healthz", "", "", 200},
	}
	for _, tc := range tests {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.header != "" {
			req.Header.Set(tc.header, tc.key)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != tc.want {
			t.Errorf("%s %s with %s %q: %d, want %d: %s", tc.method, tc.path, tc.header, tc.key, w.Code, tc.want, w.Body)
		}
		if w.Code >= 400 && w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: error as %q", tc.method, tc.path, w.Header().Get("Content-Type"))
		}
	}
}

// TestShapes: each route group writes its errors in its own shape, with the
// status of the one table and Retry-After from the error.
func TestShapes(t *testing.T) {
	var logs bytes.Buffer
	l := testSite(&logs).Listener("public")
	laravel := func(w http.ResponseWriter, _ *http.Request, f Failure) {
		w.WriteHeader(f.Status)
		_ = json.NewEncoder(w).Encode(map[string]any{"message": f.Detail})
	}
	fail := func(w http.ResponseWriter, r *http.Request) error {
		return core.InvalidFields("test", core.FieldError{Field: "email", Detail: "is required"})
	}
	l.Routes(Problem).Handle(Open, "POST", "/native", fail)
	l.Routes(laravel).Handle(Open, "POST", "/dialect", fail)
	l.Routes(Problem).Handle(Open, "POST", "/limited", func(http.ResponseWriter, *http.Request) error {
		return &core.Error{Kind: core.RateLimited, Msg: "slow down", RetryAfter: 1500e6}
	})
	h := l.Handler()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/native", nil))
	if w.Code != 422 || !strings.Contains(w.Body.String(), `"urn:gatehouse:problem:invalid"`) || !strings.Contains(w.Body.String(), `"field":"email"`) {
		t.Errorf("native: %d %s", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/dialect", nil))
	if w.Code != 422 || strings.TrimSpace(w.Body.String()) != `{"message":"email: is required"}` {
		t.Errorf("dialect: %d %s", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/limited", nil))
	if w.Code != 429 || w.Header().Get("Retry-After") != "2" {
		t.Errorf("rate limited: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
}

// TestUnmatchedPathNotEchoed: a mistyped path may hold a token; it reaches
// neither the answer nor the log, whatever the level.
func TestUnmatchedPathNotEchoed(t *testing.T) {
	var logs bytes.Buffer
	l := testSite(&logs).Listener("admin")
	l.Routes(Problem).Handle(Native, "GET", "/users", ok)
	h := l.Handler()
	const secret = "gths_0DvKeUuZSh1tyMbwPaVXsKoAb92ai8PMgNfQhjJWY4FRniqHi1L5L5jFdTORCpGhN"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/tokenz/"+secret, nil))
	if w.Code != 404 || strings.Contains(w.Body.String(), "gths_") || strings.Contains(logs.String(), "gths_") {
		t.Errorf("%d %s; log %s", w.Code, w.Body, logs.String())
	}
	if !strings.Contains(logs.String(), `"route":"unmatched"`) {
		t.Errorf("no access line for the unmatched route: %s", logs.String())
	}
}

func TestClientAddr(t *testing.T) {
	s := testSite(&bytes.Buffer{})
	for _, tc := range []struct{ peer, xff, want string }{
		{"203.0.113.9:1234", "198.51.100.1", "203.0.113.9"}, // untrusted peer: its own address
		{"127.0.0.1:1234", "198.51.100.1", "198.51.100.1"},  // trusted proxy
		{"127.0.0.1:1234", "198.51.100.1, 127.0.0.1", "198.51.100.1"},
		{"127.0.0.1:1234", "198.51.100.1, 203.0.113.5", "203.0.113.5"}, // last untrusted hop
		{"127.0.0.1:1234", "not-an-ip", "127.0.0.1"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.peer
		r.Header.Set("X-Forwarded-For", tc.xff)
		if got := s.ClientAddr(r); got != tc.want {
			t.Errorf("%s via %q: %s, want %s", tc.peer, tc.xff, got, tc.want)
		}
	}
}

// logLines decodes the JSON log lines in logs.
func logLines(t *testing.T, logs *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for l := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// TestAccessLog: each request gets a fresh id in X-Request-Id, and one access
// line with that id, the listener, method, route pattern (not the raw path),
// status, size, duration and client; a failure's line, its problem body and the
// access line share the id, and a 5xx access line is a warning.
func TestAccessLog(t *testing.T) {
	var logs bytes.Buffer
	l := testSite(&logs).Listener("public")
	rs := l.Routes(Problem)
	rs.Handle(Open, "GET", "/users/:id", ok)
	rs.Handle(Open, "GET", "/boom", func(http.ResponseWriter, *http.Request) error {
		return core.Errorf(core.Unavailable, "test", "store down")
	})
	h := l.Handler()

	do := func(path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = "127.0.0.1:5555"
		req.Header.Set("X-Forwarded-For", "198.51.100.9")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	w1, w2 := do("/users/secret-looking-id?x=1"), do("/users/another")
	id1, id2 := w1.Header().Get("X-Request-Id"), w2.Header().Get("X-Request-Id")
	if len(id1) != 20 || id1 == id2 {
		t.Fatalf("request ids %q and %q: want two distinct 20-character ids", id1, id2)
	}
	lines := logLines(t, &logs)
	if len(lines) != 2 {
		t.Fatalf("%d log lines for two good requests, want 2: %s", len(lines), logs.String())
	}
	want := map[string]any{"level": "info", "req_id": id1, "listener": "public", "method": "GET", "route": "/users/:id",
		"status": float64(200), "size": float64(len(w1.Body.Bytes())), "client": "198.51.100.9", "message": "request"}
	for k, v := range want {
		if lines[0][k] != v {
			t.Errorf("access line %s = %v, want %v (line %v)", k, lines[0][k], v, lines[0])
		}
	}
	if _, ok := lines[0]["dur"].(float64); !ok {
		t.Errorf("access line without a duration: %v", lines[0])
	}
	if strings.Contains(logs.String(), "secret-looking-id") {
		t.Errorf("the raw path reached the log: %s", logs.String())
	}

	logs.Reset()
	w := do("/boom")
	id := w.Header().Get("X-Request-Id")
	var body struct{ RequestID string }
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.RequestID != id || w.Code != 503 {
		t.Fatalf("failure: %d %s, want 503 with requestId %s", w.Code, w.Body, id)
	}
	lines = logLines(t, &logs)
	if len(lines) != 2 {
		t.Fatalf("%d log lines for a failure, want the failure and the access line: %s", len(lines), logs.String())
	}
	if lines[0]["message"] != "request failed" || lines[0]["req_id"] != id || lines[0]["level"] != "error" {
		t.Errorf("failure line %v: want an error-level line with req_id %s", lines[0], id)
	}
	if lines[1]["message"] != "request" || lines[1]["req_id"] != id || lines[1]["level"] != "warn" || lines[1]["status"] != float64(503) {
		t.Errorf("access line %v: want a warn-level 503 line with req_id %s", lines[1], id)
	}
}

// TestSeparateAccessLog: with Options.AccessLog, access lines go there and
// every other line (a failure) to Log.
func TestSeparateAccessLog(t *testing.T) {
	var logs, access bytes.Buffer
	l := NewSite(Options{Log: zerolog.New(&logs), AccessLog: &access}).Listener("public")
	l.Routes(Problem).Handle(Open, "GET", "/boom", func(http.ResponseWriter, *http.Request) error {
		return core.Errorf(core.Unavailable, "test", "store down")
	})
	w := httptest.NewRecorder()
	l.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/boom", nil))
	id := w.Header().Get("X-Request-Id")
	lines, accessLines := logLines(t, &logs), logLines(t, &access)
	if len(lines) != 1 || lines[0]["message"] != "request failed" || lines[0]["req_id"] != id {
		t.Errorf("log: %v, want the failure line alone", lines)
	}
	if len(accessLines) != 1 || accessLines[0]["message"] != "request" || accessLines[0]["req_id"] != id || accessLines[0]["status"] != float64(503) {
		t.Errorf("access log: %v, want the 503's access line alone", accessLines)
	}
}

// TestHonoursMarks: a route says at registration which request headers it
// honours; the route table lists them in both slash forms, and a handler
// that reads If-Match on a route that did not say so answers 500, so no
// route can honour the header without the OpenAPI tests knowing.
func TestHonoursMarks(t *testing.T) {
	l := NewSite(Options{}).Listener("admin")
	rs := l.Routes(Problem)
	read := func(w http.ResponseWriter, r *http.Request) error {
		pre, err := Preconditions(r)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, pre.IfMatch)
	}
	rs.Handle(Open, "PUT", "/marked", read, IfMatch)
	rs.Handle(Open, "PUT", "/unmarked", read)
	h := l.Handler()
	for _, tc := range []struct {
		path string
		want int
	}{{"/marked", 200}, {"/marked/", 200}, {"/unmarked", 500}} {
		req := httptest.NewRequest("PUT", tc.path, nil)
		req.Header.Set("If-Match", `"v1"`)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != tc.want {
			t.Errorf("PUT %s with If-Match: %d %s, want %d", tc.path, w.Code, w.Body, tc.want)
		}
	}
	for _, p := range l.Patterns() {
		marked := strings.HasPrefix(p.Path, "/marked")
		if got := len(p.Honours) == 1 && p.Honours[0] == IfMatch; got != marked {
			t.Errorf("%s %s honours %v", p.Method, p.Path, p.Honours)
		}
	}
}

// TestWriteEntityJSONSharedBody: a body shared by concurrent requests (a
// memoised answer, with room beyond its length) is answered as it is, with
// its ETag and type, and left as it was.
func TestWriteEntityJSONSharedBody(t *testing.T) {
	buf := make([]byte, 0, 64)
	buf = append(buf, `{"id":"u1"}`+"\n"...)
	spare := buf[:len(buf)+1]
	spare[len(buf)] = 'x'
	w := httptest.NewRecorder()
	if err := WriteEntityJSON(w, httptest.NewRequest("GET", "/users/u1", nil), 200, "v1", buf); err != nil {
		t.Fatal(err)
	}
	if got := w.Body.String(); got != `{"id":"u1"}`+"\n" || w.Header().Get("ETag") != `"v1"` || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("answer %q, headers %v", got, w.Header())
	}
	if string(buf) != `{"id":"u1"}`+"\n" || spare[len(buf)] != 'x' {
		t.Errorf("WriteEntityJSON changed the shared body: %q, spare %q", buf, spare[len(buf)])
	}
}

// TestLatencyByStatus: each answer's latency is counted under its listener,
// method, route pattern and status, the observers a route keeps included:
// one route answering two statuses, and a wrong method, count apart.
func TestLatencyByStatus(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := NewSite(Options{Log: zerolog.Nop(), Registry: reg})
	l := s.Listener("public")
	l.Routes(Problem).Handle(Open, "GET", "/things/:id", func(w http.ResponseWriter, r *http.Request) error {
		if Param(r, "id") == "gone" {
			return core.Errorf(core.NotFound, "test", "no such thing")
		}
		return ok(w, r)
	})
	h := l.Handler()
	for _, p := range []string{"/things/a", "/things/b", "/things/gone", "/things/a"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/things/a", nil))
	want := map[string]uint64{"GET /things/:id 200": 3, "GET /things/:id 404": 1, "POST unmatched 400": 1}
	got := map[string]uint64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "gatehouse_http_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			lv := map[string]string{}
			for _, lp := range m.GetLabel() {
				lv[lp.GetName()] = lp.GetValue()
			}
			if lv["listener"] != "public" {
				t.Errorf("labels %v: want listener public", lv)
			}
			got[lv["method"]+" "+lv["route"]+" "+lv["code"]] = m.GetHistogram().GetSampleCount()
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("latency counts %v, want %v", got, want)
	}
}

// TestDateHeader: every answer carries a Date of the second it was made in
// (the outer handler sets it once a second, not net/http at each answer).
func TestDateHeader(t *testing.T) {
	s := testSite(&bytes.Buffer{})
	l := s.Listener("public")
	l.Routes(Problem).Handle(Open, "GET", "/x", ok)
	h := l.Handler()
	for range 3 {
		before := time.Now().Truncate(time.Second)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/x", nil))
		after := time.Now()
		d, err := http.ParseTime(w.Header().Get("Date"))
		if err != nil || d.Before(before) || d.After(after) {
			t.Fatalf("Date %q (%v), want a time between %v and %v", w.Header().Get("Date"), err, before, after)
		}
		time.Sleep(600 * time.Millisecond) // the next answer may be in the next second
	}
}

// TestRequestContext: a handler's request context is the request's own (its
// values, its cancellation, what derives from it) with the request's state
// added: the route it matched.
func TestRequestContext(t *testing.T) {
	type key struct{}
	l := NewSite(Options{}).Listener("public")
	var route string
	var value any
	var derived context.Context
	var stop context.CancelFunc
	l.Routes(Problem).Handle(Open, "GET", "/ctx", func(w http.ResponseWriter, r *http.Request) error {
		route, value = Route(r), r.Context().Value(key{})
		derived, stop = context.WithTimeout(r.Context(), time.Hour)
		return NoContent(w)
	})
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	w := httptest.NewRecorder()
	l.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/ctx", nil).WithContext(ctx))
	if route != "/ctx" || value != "v" || w.Code != http.StatusNoContent {
		t.Fatalf("route %q, value %v, status %d: want /ctx, v, 204", route, value, w.Code)
	}
	defer stop()
	cancel()
	select {
	case <-derived.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a context derived from the request's was not cancelled with it")
	}
}
