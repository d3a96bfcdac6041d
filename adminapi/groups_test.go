package adminapi

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// names returns the usernames of a users page.
func names(m map[string]any) []string {
	var out []string
	us, _ := m["users"].([]any)
	for _, u := range us {
		out = append(out, u.(map[string]any)["username"].(string))
	}
	return out
}

func TestGroupsAPI(t *testing.T) {
	e := newEnv(t)
	dev := e.must(200, "POST", "/groups", `{"name":"Development team","tags":["deploy"]}`)
	if dev["number"].(float64) < 1 || dev["name"] != "Development team" {
		t.Fatalf("created group %v", dev)
	}
	e.must(409, "POST", "/groups", `{"name":"development TEAM"}`)
	p := e.must(422, "POST", "/groups", `{"name":" padded","tags":["a b"]}`)
	if got := fieldsOf(p); !cmp.Equal(got, []string{"name", "tags.0"}) {
		t.Errorf("bad group fields %v", got)
	}
	e.must(200, "POST", "/groups", `{"name":"Ops"}`)
	e.must(200, "GET", "/groups/development%20team", "")
	e.must(200, "GET", fmt.Sprintf("/groups/%v", dev["number"]), "")
	e.must(404, "GET", "/groups/nothing", "")

	e.must(200, "POST", "/users", `{"username":"alice","firstname":"A","lastname":"L","email":"alice@example.com","externalId":"ext-1"}`)
	e.must(200, "POST", "/users", `{"username":"albert","firstname":"A","lastname":"B"}`)
	e.must(200, "POST", "/users", `{"username":"bob","firstname":"B","lastname":"O"}`)
	e.must(200, "POST", "/users/alice/groups", `{"groups":["Development team","ops"]}`)
	e.must(404, "POST", "/users/bob/groups", `{"groups":["nothing"]}`)
	tags := e.must(200, "PUT", "/users/ext-1/tags/admin", "") // an externalId is a user reference
	if !cmp.Equal(tags, map[string]any{"tags": []any{"admin"}, "effectiveTags": []any{"admin", "deploy"}}) {
		t.Errorf("tags %v", tags)
	}
	e.must(200, "PUT", "/users/bob/status", `{"status":false}`)

	for _, c := range []struct {
		query string
		want  []string
	}{
		{"group=Development%20team", []string{"alice"}},
		{"tag=deploy", []string{"alice"}},
		{"username=AL", []string{"albert", "alice"}},
		{"active=false", []string{"bob"}},
		{"active=true&username=a", []string{"albert", "alice"}},
		{"email=ALICE@example.com", []string{"alice"}},
		{"externalId=ext-1", []string{"alice"}},
		{"tag=nothing", nil},
		{"group=nothing", nil},
	} {
		w := e.do("GET", "/users?count=1&"+c.query, "")
		if w.Code != 200 {
			t.Fatalf("%s: %d %s", c.query, w.Code, w.Body)
		}
		if got := w.Header().Get("X-Total-Count"); got != fmt.Sprint(len(c.want)) {
			t.Errorf("%s: X-Total-Count %s, want %d", c.query, got, len(c.want))
		}
		var all []string
		m := decode(t, w.Body.Bytes())
		for {
			all = append(all, names(m)...)
			next := m["nextKey"].(float64)
			if next == 0 {
				break
			}
			m = e.must(200, "GET", fmt.Sprintf("/users?count=1&start=%v&%s", next, c.query), "")
		}
		if !cmp.Equal(all, c.want) {
			t.Errorf("%s: %v, want %v", c.query, all, c.want)
		}
	}
	if p := e.must(422, "GET", "/users?active=maybe", ""); !cmp.Equal(fieldsOf(p), []string{"active"}) {
		t.Errorf("bad filter fields %v", fieldsOf(p))
	}

	// /verify: groups, effective tags, X-Required-Tags.
	e.must(201, "POST", "/scopes", `{"scopes":["read"]}`)
	k := e.must(200, "POST", "/credentials", `{"consumerId":"alice","type":"key-auth","credential":{"scopes":["read"]}}`)
	key := k["keyId"].(string) + ":" + k["keySecret"].(string)
	w := e.pub("GET", "/verify", "", "x-api-key", key, "X-Required-Tags", "deploy admin")
	if w.Code != 200 || w.Header().Get("X-Consumer-Groups") != "Development team,Ops" || w.Header().Get("X-Consumer-Tags") != "admin deploy" {
		t.Errorf("verify: %d groups %q tags %q", w.Code, w.Header().Get("X-Consumer-Groups"), w.Header().Get("X-Consumer-Tags"))
	}
	if w := e.pub("GET", "/verify", "", "x-api-key", key, "X-Required-Tags", "pager"); w.Code != 403 {
		t.Errorf("missing tag: %d, want 403", w.Code)
	}
	e.must(200, "PUT", "/groups/ops/tags/pager", "")
	if w := e.pub("GET", "/verify", "", "x-api-key", key, "X-Required-Tags", "pager"); w.Code != 200 {
		t.Errorf("tag granted to a group: %d, want 200 at once", w.Code)
	}
	e.must(204, "DELETE", "/groups/ops", "")
	if w := e.pub("GET", "/verify", "", "x-api-key", key, "X-Required-Tags", "pager"); w.Code != 403 || w.Header().Get("X-Consumer-Groups") != "" {
		t.Errorf("group deleted: %d, want 403", w.Code)
	}
	gs := e.must(200, "GET", "/users/alice/groups", "")["groups"].([]any)
	if len(gs) != 1 || gs[0].(map[string]any)["name"] != "Development team" {
		t.Errorf("alice's groups after a deletion: %v", gs)
	}
	// The user's own view carries its group ids and own tags; a user in no
	// group and without tags shows neither (Express Gateway's shape).
	alice := e.must(200, "GET", "/users/alice", "")
	if !cmp.Equal(alice["groups"], []any{dev["id"]}) || !cmp.Equal(alice["tags"], []any{"admin"}) {
		t.Errorf("alice's view: groups %v tags %v, want [%v] [admin]", alice["groups"], alice["tags"], dev["id"])
	}
	if albert := e.must(200, "GET", "/users/albert", ""); albert["groups"] != nil || albert["tags"] != nil {
		t.Errorf("albert's view: groups %v tags %v, want neither", albert["groups"], albert["tags"])
	}
	e.must(200, "PUT", "/groups/"+url.PathEscape("Development team"), `{"name":"Developers"}`)
	w = e.pub("GET", "/verify", "", "x-api-key", key)
	if got := w.Header().Get("X-Consumer-Groups"); got != "Developers" {
		t.Errorf("renamed group in X-Consumer-Groups: %q", got)
	}
	e.must(200, "DELETE", "/users/alice/groups/developers", "")
	if got := e.must(200, "GET", "/users/alice/tags", "")["effectiveTags"]; !cmp.Equal(got, []any{"admin"}) {
		t.Errorf("effective tags after leaving: %v", got)
	}
	list := e.do("GET", "/groups", "")
	if list.Code != 200 || list.Header().Get("X-Total-Count") != "1" || !strings.Contains(list.Body.String(), `"Developers"`) {
		t.Errorf("groups list: %d %s %s", list.Code, list.Header().Get("X-Total-Count"), list.Body)
	}
}

// TestGroupDeleteUnderGrants deletes groups while they are granted and
// revoked: no user keeps a deleted group, and /verify never names one.
func TestGroupDeleteUnderGrants(t *testing.T) {
	e := newEnv(t)
	const users = 12
	for i := range users {
		e.must(200, "POST", "/users", fmt.Sprintf(`{"username":"u%d","firstname":"F","lastname":"L"}`, i))
	}
	for round := range 3 {
		name := fmt.Sprintf("g%d", round)
		e.must(200, "POST", "/groups", `{"name":"`+name+`","tags":["t"]}`)
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[int]int{}
		for i := range users {
			wg.Go(func() {
				w := e.do("POST", fmt.Sprintf("/users/u%d/groups", i), `{"groups":["`+name+`"]}`)
				mu.Lock()
				codes[w.Code]++
				mu.Unlock()
			})
		}
		wg.Go(func() { e.must(204, "DELETE", "/groups/"+name, "") })
		wg.Wait()
		var got []int
		for c := range codes {
			got = append(got, c)
		}
		sort.Ints(got)
		for _, c := range got {
			if c != 200 && c != 404 {
				t.Errorf("round %d: a grant answered %d (codes %v)", round, c, codes)
			}
		}
		for i := range users {
			if gs := e.must(200, "GET", fmt.Sprintf("/users/u%d/groups", i), "")["groups"].([]any); len(gs) != 0 {
				t.Fatalf("round %d: u%d keeps %v", round, i, gs)
			}
		}
		if w := e.do("GET", "/users?tag=t", ""); w.Header().Get("X-Total-Count") != "0" {
			t.Fatalf("round %d: tag holders %s", round, w.Body)
		}
	}
	if r := e.must(200, "GET", "/doctor", ""); fmt.Sprint(r["danglingIndex"]) != "[]" {
		t.Errorf("doctor after the races: %v", r)
	}
}
