package adminapi

import (
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestIdempotencyKey: a create retried with its Idempotency-Key gets the first
// answer again, without the secret the first showed; a different body with
// the key is 422; a failed create keeps no answer.
func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	e.must(200, "POST", "/users", `{"username":"carol","firstname":"C","lastname":"L"}`)
	body := `{"consumerId":"carol","type":"key-auth"}`
	first := e.send("POST", "/credentials", body, "Idempotency-Key", "cred-1")
	if first.Code != 200 || first.Header().Get("Idempotent-Replayed") != "" {
		t.Fatalf("first create: %d %v", first.Code, first.Header())
	}
	created := decode(t, first.Body.Bytes())
	if created["keySecret"] == nil {
		t.Fatalf("the first answer shows no secret: %v", created)
	}
	for range 2 {
		again := e.send("POST", "/credentials", body, "Idempotency-Key", "cred-1")
		replayed := decode(t, again.Body.Bytes())
		if again.Code != 200 || again.Header().Get("Idempotent-Replayed") != "true" || replayed["id"] != created["id"] {
			t.Fatalf("retry: %d %v %v, want the first answer replayed", again.Code, again.Header(), replayed)
		}
		if strings.Contains(again.Body.String(), created["keySecret"].(string)) || replayed["keySecret"] != nil {
			t.Fatalf("a replay shows the secret again: %s", again.Body)
		}
		if again.Header().Get("ETag") != first.Header().Get("ETag") || again.Header().Get("Content-Type") != "application/json" {
			t.Errorf("replayed headers %v, first %v", again.Header(), first.Header())
		}
	}
	if n := len(e.must(200, "GET", "/credentials", "")["credentials"].([]any)); n != 1 {
		t.Fatalf("%d credentials after a create and two retries, want 1", n)
	}
	// The secret works: it is the first answer's.
	if w := e.pub("GET", "/verify", "", "x-api-key", created["keyId"].(string)+":"+created["keySecret"].(string)); w.Code != 200 {
		t.Fatalf("the first answer's key does not verify: %d", w.Code)
	}
	w := e.send("POST", "/credentials", `{"consumerId":"carol","type":"jwt"}`, "Idempotency-Key", "cred-1")
	if w.Code != 422 || !strings.Contains(w.Body.String(), "Idempotency-Key") {
		t.Fatalf("another body with the key: %d %s, want 422 naming Idempotency-Key", w.Code, w.Body)
	}
	// A failed create records nothing: the retry runs again (and fails again).
	for range 2 {
		if w := e.send("POST", "/users", `{"username":"dave"}`, "Idempotency-Key", "user-1"); w.Code != 422 || w.Header().Get("Idempotent-Replayed") != "" {
			t.Fatalf("an invalid create with a key: %d %v", w.Code, w.Header())
		}
	}
	if w := e.send("POST", "/users", `{"username":"dave","firstname":"D","lastname":"L"}`, "Idempotency-Key", "user-1"); w.Code != 200 {
		t.Fatalf("the corrected create with the key of failed ones: %d %s", w.Code, w.Body)
	}
	for _, bad := range []string{"", strings.Repeat("k", 256), "caf\u00e9"} {
		if w := e.send("POST", "/scopes", `{"scopes":["s1"]}`, "Idempotency-Key", bad); w.Code != 400 {
			t.Errorf("Idempotency-Key %.20q: %d, want 400", bad, w.Code)
		}
	}
	// Keys are per admin key: another admin key's request with the same key runs.
	key := e.must(201, "POST", "/admin-keys", `{"name":"ci","scope":"admin"}`)["key"].(string)
	w = call(t, e.admin, "POST", "/users", `{"username":"dave","firstname":"D","lastname":"L"}`, "x-api-key", key, "Idempotency-Key", "user-1")
	if w.Code != 409 {
		t.Fatalf("another admin key with the same Idempotency-Key: %d, want 409 (it ran: dave is taken)", w.Code)
	}
}

// TestIdempotencyConcurrent: N identical creates sent at once with one
// Idempotency-Key make exactly one user; every 200 carries that user, the
// others are 409 (the first still in flight).
func TestIdempotencyConcurrent(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(e.admin)
	t.Cleanup(srv.Close)
	const n = 16
	type answer struct {
		status   int
		id       string
		replayed bool
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res := send(t, "POST", srv.URL+"/users", `{"username":"erin","firstname":"E","lastname":"L"}`, "Idempotency-Key", "same-key")
			b, _ := io.ReadAll(res.Body)
			var u struct{ ID string }
			_ = json.Unmarshal(b, &u)
			answers[i] = answer{res.StatusCode, u.ID, res.Header.Get("Idempotent-Replayed") == "true"}
		})
	}
	wg.Wait()
	ids := map[string]bool{}
	count := map[int]int{}
	replays := 0
	for _, a := range answers {
		count[a.status]++
		switch a.status {
		case 200:
			ids[a.id] = true
			if a.replayed {
				replays++
			}
		case 409:
		default:
			t.Fatalf("a concurrent create answered %d", a.status)
		}
	}
	if len(ids) != 1 || count[200]-replays != 1 {
		t.Fatalf("concurrent creates with one key: %d ids, %d first answers, want 1 and 1 (%v)", len(ids), count[200]-replays, answers)
	}
	if n := len(e.must(200, "GET", "/users", "")["users"].([]any)); n != 1 {
		t.Fatalf("%d users, want 1", n)
	}
	// Those told 409 retry once the first is done, and get its answer.
	w := e.send("POST", "/users", `{"username":"erin","firstname":"E","lastname":"L"}`, "Idempotency-Key", "same-key")
	if u := decode(t, w.Body.Bytes()); w.Code != 200 || w.Header().Get("Idempotent-Replayed") != "true" || !ids[u["id"].(string)] {
		t.Fatalf("retry after the first finished: %d %v %s", w.Code, w.Header(), w.Body)
	}
	t.Logf("%d concurrent POSTs with one Idempotency-Key: 1 created, %d replayed, %d × 409 in flight; 1 user stored", n, replays, count[409])
}

// TestIdempotencySecretsShownOnce: a user secret, an admin key, a client and
// a client key made with an Idempotency-Key: 16 identical POSTs at once make
// one (the others 409 while it runs, or its replay); a retry gets the first
// answer without the secret it showed; another body with the key is 422;
// and the secret is in no log line.
func TestIdempotencySecretsShownOnce(t *testing.T) {
	e := newEnv(t)
	e.must(200, "POST", "/users", `{"username":"sam","firstname":"S","lastname":"L"}`)
	client := e.must(201, "POST", "/clients", `{"name":"Acme"}`)["id"].(string)
	srv := httptest.NewServer(e.admin)
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name, path, body, other string
		status                  int
		secret                  string // the answer's field that shows the secret
		count                   func() int
	}{
		{"user secret", "/users/sam/secret", "", `{"again":true}`, 200, "secret", nil},
		{"admin key", "/admin-keys", `{"name":"deploy","scope":"read"}`, `{"name":"deploy2","scope":"read"}`, 201, "key",
			func() int { return len(e.must(200, "GET", "/admin-keys", "")["adminKeys"].([]any)) }},
		{"client", "/clients", `{"name":"Globex"}`, `{"name":"Initech"}`, 201, "key",
			func() int { return len(e.must(200, "GET", "/clients", "")["clients"].([]any)) }},
		{"client key", "/clients/" + client + "/keys", "", `{"again":true}`, 201, "key",
			func() int { return len(e.must(200, "GET", "/clients/"+client, "")["keys"].([]any)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := 0
			if tc.count != nil {
				before = tc.count()
			}
			key := "k-" + strings.ReplaceAll(tc.name, " ", "-")
			const n = 16
			type answer struct {
				status   int
				body     map[string]any
				replayed bool
			}
			answers := make([]answer, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					res := send(t, "POST", srv.URL+tc.path, tc.body, "Idempotency-Key", key)
					b, _ := io.ReadAll(res.Body)
					var m map[string]any
					_ = json.Unmarshal(b, &m)
					answers[i] = answer{res.StatusCode, m, res.Header.Get("Idempotent-Replayed") == "true"}
				})
			}
			wg.Wait()
			var secret string
			firsts, inFlight := 0, 0
			for _, a := range answers {
				switch {
				case a.status == tc.status && !a.replayed:
					firsts++
					secret, _ = a.body[tc.secret].(string)
				case a.status == tc.status && a.replayed:
					if a.body[tc.secret] != nil {
						t.Fatalf("a concurrent replay shows the secret: %v", a.body)
					}
				case a.status == 409:
					inFlight++
				default:
					t.Fatalf("a concurrent POST answered %d %v", a.status, a.body)
				}
			}
			if firsts != 1 || secret == "" {
				t.Fatalf("%d first answers (secret %q), want exactly 1 showing the secret", firsts, secret)
			}
			if tc.count != nil && tc.count() != before+1 {
				t.Fatalf("%d made, want 1", tc.count()-before)
			}
			if tc.count == nil { // the user secret: the first answer's is the one that works
				if w := e.pub("POST", "/auth/tokens", `{"provider":"secret","identifier":"sam","secret":"`+secret+`"}`); w.Code != 200 {
					t.Fatalf("a login with the first answer's secret: %d %s", w.Code, w.Body)
				}
			}
			w := e.send("POST", tc.path, tc.body, "Idempotency-Key", key)
			if w.Code != tc.status || w.Header().Get("Idempotent-Replayed") != "true" || strings.Contains(w.Body.String(), secret) {
				t.Fatalf("retry after the first finished: %d %v %s, want its answer replayed without the secret", w.Code, w.Header(), w.Body)
			}
			if w := e.send("POST", tc.path, tc.other, "Idempotency-Key", key); w.Code != 422 || !strings.Contains(w.Body.String(), "Idempotency-Key") {
				t.Fatalf("another body with the key: %d %s, want 422 naming Idempotency-Key", w.Code, w.Body)
			}
			if strings.Contains(e.logs.String(), secret) {
				t.Fatal("the secret is in a log line")
			}
			t.Logf("%d concurrent POST %s with one Idempotency-Key: 1 made, %d × 409 in flight, %d replayed", n, tc.path, inFlight, n-1-inFlight)
		})
	}
}
