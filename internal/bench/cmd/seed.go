package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// admin calls the admin API with the admin key.
type admin struct {
	base, key string
	client    *http.Client
}

// do sends body (marshalled unless nil) and decodes the answer into out
// (unless nil); a status other than want is an error.
func (a admin) do(ctx context.Context, method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("X-Api-Key", a.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// loginUser is the user the login row signs in as, with seeded.password.
const loginUser = "bench-login"

// seeded is what the benchmark presents.
type seeded struct {
	userID     string   // the user "bench"
	key        string   // KEYID:KEYSECRET of bench's key
	basicPass  string   // bench's basic-auth password
	password   string   // the password of bench and loginUser
	session    string   // a session token of bench
	missKeys   []string // KEYID:KEYSECRET of distinct keys of the seeded users
	firstUsers []string // ids of seeded users, for GET /users/{id}
}

// seed writes the benchmark's data through the admin API: the user "bench"
// with a key, a Basic password and a session, nUsers more users and nKeys
// keys spread over them.
func seed(ctx context.Context, a admin, publicBase string, nUsers, nKeys int) (seeded, error) {
	var s seeded
	s.password = "correct horse battery staple"
	if err := a.do(ctx, "POST", "/scopes", map[string]any{"scopes": []string{"read", "write"}}, 201, nil); err != nil {
		return s, err
	}
	var u struct{ ID string }
	if err := a.do(ctx, "POST", "/users", map[string]any{"username": "bench", "firstname": "Bench", "lastname": "User", "email": "bench@example.com"}, 200, &u); err != nil {
		return s, err
	}
	s.userID = u.ID
	if err := a.do(ctx, "PUT", "/users/bench/password", map[string]any{"password": s.password}, 204, nil); err != nil {
		return s, err
	}
	// The login row signs in as its own user: its sessions would otherwise push
	// bench's session out (sessions.maxPerUser) and fail the session row.
	if err := a.do(ctx, "POST", "/users", map[string]any{"username": loginUser, "firstname": "Login", "lastname": "User", "email": loginUser + "@example.com"}, 200, nil); err != nil {
		return s, err
	}
	if err := a.do(ctx, "PUT", "/users/"+loginUser+"/password", map[string]any{"password": s.password}, 204, nil); err != nil {
		return s, err
	}
	var k struct{ KeyID, KeySecret, Password string }
	if err := a.do(ctx, "POST", "/credentials", map[string]any{"consumerId": "bench", "type": "key-auth", "credential": map[string]any{"scopes": []string{"read"}}}, 200, &k); err != nil {
		return s, err
	}
	s.key = k.KeyID + ":" + k.KeySecret
	if err := a.do(ctx, "POST", "/credentials", map[string]any{"consumerId": "bench", "type": "basic-auth"}, 200, &k); err != nil {
		return s, err
	}
	s.basicPass = k.Password
	var tok struct{ Token string }
	login := admin{base: publicBase, client: a.client}
	if err := login.do(ctx, "POST", "/auth/tokens", map[string]string{"provider": "email", "identifier": "bench", "secret": s.password}, 200, &tok); err != nil {
		return s, err
	}
	s.session = tok.Token

	ids := make([]string, nUsers)
	if err := parallel(ctx, nUsers, func(i int) error {
		var u struct{ ID string }
		err := a.do(ctx, "POST", "/users", seedUser(i), 200, &u)
		ids[i] = u.ID
		return err
	}); err != nil {
		return s, err
	}
	s.firstUsers = ids[:min(len(ids), 100)]
	s.missKeys = make([]string, nKeys)
	err := parallel(ctx, nKeys, func(i int) error {
		var k struct{ KeyID, KeySecret string }
		err := a.do(ctx, "POST", "/credentials", map[string]any{"consumerId": ids[i%len(ids)], "type": "key-auth"}, 200, &k)
		s.missKeys[i] = k.KeyID + ":" + k.KeySecret
		return err
	})
	return s, err
}

// seedUser is the i-th seeded user.
func seedUser(i int) map[string]any {
	return map[string]any{"username": fmt.Sprintf("seed%06d", i), "firstname": "Seed", "lastname": "User", "email": fmt.Sprintf("seed%06d@example.com", i)}
}

// parallel runs f(0..n-1) on 16 goroutines and returns the first error.
func parallel(ctx context.Context, n int, f func(i int) error) error {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		once sync.Once
		err  error
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if e := f(i); e != nil {
					once.Do(func() { err = e })
					return
				}
			}
		}()
	}
	wg.Wait()
	if err == nil {
		err = ctx.Err()
	}
	return err
}
