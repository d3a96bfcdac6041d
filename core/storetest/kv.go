package storetest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/core"
)

// kvGet reads key, failing the test on an error.
func (e *env) kvGet(kv core.KV, key string) ([]byte, bool) {
	e.t.Helper()
	v, ok, err := kv.Get(e.ctx, key)
	e.must(err)
	return v, ok
}

// wantKV fails unless key holds want (nil: absent).
func (e *env) wantKV(kv core.KV, key string, want []byte, what string) {
	e.t.Helper()
	v, ok := e.kvGet(kv, key)
	switch {
	case want == nil && ok:
		e.t.Errorf("%s: %q holds %q, want it absent", what, key, v)
	case want != nil && !ok:
		e.t.Errorf("%s: %q is absent, want %q", what, key, want)
	case want != nil && !bytes.Equal(v, want):
		e.t.Errorf("%s: %q holds %q, want %q", what, key, v, want)
	}
}

// cas runs CompareAndSet, failing the test on an error.
func (e *env) cas(kv core.KV, key string, old, value []byte) bool {
	e.t.Helper()
	ok, err := kv.CompareAndSet(e.ctx, key, old, value, 0)
	e.must(err)
	return ok
}

// testKV: a plugin namespace stores, reads and deletes opaque bytes, never sees
// another namespace's keys, and CompareAndSet tells absent (nil old) from empty.
func testKV(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	email, google := s.PluginKV("email"), s.PluginKV("google")

	if v, ok, err := email.Get(ctx, "tok"); v != nil || ok || err != nil {
		t.Errorf("Get of an absent key = %q, %v, %v; want nil, false, nil", v, ok, err)
	}
	e.must(email.Set(ctx, "tok", []byte("e1"), 0))
	e.wantKV(google, "tok", nil, "another namespace")
	e.must(google.Set(ctx, "tok", []byte("g1"), 0))
	e.wantKV(email, "tok", []byte("e1"), "a key set in another namespace too")
	e.must(email.Set(ctx, "tok", []byte("e2"), 0))
	e.wantKV(email, "tok", []byte("e2"), "Set over a value")
	e.wantKV(google, "tok", []byte("g1"), "the other namespace's value")
	// Namespace "a", key "b:c" and namespace "a:b", key "c" must not meet: a
	// namespace with ':' is refused.
	e.must(s.PluginKV("a").Set(ctx, "b:c", []byte("x"), 0))
	for _, ns := range []string{"a:b", ""} {
		bad := s.PluginKV(ns)
		_, _, err := bad.Get(ctx, "c")
		wantKind(t, err, core.Invalid, fmt.Sprintf("Get in namespace %q", ns))
		wantKind(t, bad.Set(ctx, "c", []byte("y"), 0), core.Invalid, fmt.Sprintf("Set in namespace %q", ns))
		_, err = bad.Delete(ctx, "c")
		wantKind(t, err, core.Invalid, fmt.Sprintf("Delete in namespace %q", ns))
		_, err = bad.CompareAndSet(ctx, "c", nil, []byte("y"), 0)
		wantKind(t, err, core.Invalid, fmt.Sprintf("CompareAndSet in namespace %q", ns))
	}
	wantKind(t, email.Set(ctx, "", []byte("x"), 0), core.Invalid, "Set of an empty key")
	wantKind(t, email.Set(ctx, "neg", []byte("x"), -time.Second), core.Invalid, "Set with a negative ttl")

	// Keys and values are opaque bytes.
	binKey, binVal := "bin\x00\xff{x}:y z", []byte{0, 1, 0xff, '\n', 0}
	e.must(email.Set(ctx, binKey, binVal, 0))
	e.wantKV(email, binKey, binVal, "binary key and value")
	e.must(email.Set(ctx, "empty", []byte{}, 0))
	if v, ok := e.kvGet(email, "empty"); !ok || len(v) != 0 {
		t.Errorf("Get of an empty value = %q, %v; want empty, true", v, ok)
	}

	// Delete reports existence once.
	for i, want := range []bool{true, false} {
		ok, err := email.Delete(ctx, "tok")
		e.must(err)
		if ok != want {
			t.Errorf("Delete #%d = %v, want %v", i+1, ok, want)
		}
	}
	e.wantKV(email, "tok", nil, "a deleted key")
	e.wantKV(google, "tok", []byte("g1"), "the other namespace's key after a Delete")

	// CompareAndSet.
	if !e.cas(email, "c", nil, []byte("1")) {
		t.Error("CompareAndSet(nil) of an absent key failed")
	}
	e.wantKV(email, "c", []byte("1"), "after CompareAndSet(nil)")
	if e.cas(email, "c", nil, []byte("2")) {
		t.Error("CompareAndSet(nil) of a present key succeeded")
	}
	if e.cas(email, "c", []byte("nope"), []byte("2")) {
		t.Error("CompareAndSet with a wrong old value succeeded")
	}
	if e.cas(email, "c", []byte("1\x00"), []byte("2")) {
		t.Error("CompareAndSet with a longer old value succeeded")
	}
	e.wantKV(email, "c", []byte("1"), "after failed CompareAndSets")
	if !e.cas(email, "c", []byte("1"), []byte("2")) {
		t.Error("CompareAndSet with the right old value failed")
	}
	e.wantKV(email, "c", []byte("2"), "after CompareAndSet")
	if e.cas(email, "absent", []byte("x"), []byte("y")) || e.cas(email, "absent", []byte{}, []byte("y")) {
		t.Error("CompareAndSet with a non-nil old value set an absent key")
	}
	e.wantKV(email, "absent", nil, "after CompareAndSet of an absent key")
	if e.cas(email, "empty", nil, []byte("z")) {
		t.Error("CompareAndSet(nil) of a key holding an empty value succeeded")
	}
	if !e.cas(email, "empty", []byte{}, []byte("z")) {
		t.Error("CompareAndSet(empty) of a key holding an empty value failed")
	}
	e.wantKV(email, "empty", []byte("z"), "after CompareAndSet(empty)")
	if e.cas(google, "c", []byte("2"), []byte("3")) {
		t.Error("CompareAndSet matched another namespace's value")
	}
	_, err := email.CompareAndSet(ctx, "c", []byte("2"), []byte("3"), -time.Second)
	wantKind(t, err, core.Invalid, "CompareAndSet with a negative ttl")

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, _, err = email.Get(cancelled, "c")
	wantKind(t, err, core.Unavailable, "Get with a cancelled context")
	wantKind(t, email.Set(cancelled, "c", []byte("x"), 0), core.Unavailable, "Set with a cancelled context")
	_, err = email.Delete(cancelled, "c")
	wantKind(t, err, core.Unavailable, "Delete with a cancelled context")
	_, err = email.CompareAndSet(cancelled, "c", nil, []byte("x"), 0)
	wantKind(t, err, core.Unavailable, "CompareAndSet with a cancelled context")
	e.wantKV(email, "c", []byte("2"), "after cancelled calls")

	// Plugin keys are not leftovers.
	e.doctorClean(s)
}

// testKVConcurrent: of 20 concurrent Deletes of one key exactly one sees it, and
// of 20 concurrent CompareAndSets from one old value (or from absent) exactly
// one wins.
func testKVConcurrent(t *testing.T, h Harness) {
	e := newEnv(t, h)
	kv := e.s.PluginKV("race")
	const n = 20
	race := func(what string, f func(i int) (bool, error)) int {
		t.Helper()
		wins := make([]bool, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				ok, err := f(i)
				if err != nil {
					t.Errorf("%s %d: %v", what, i, err)
				}
				wins[i] = ok
			})
		}
		close(start)
		wg.Wait()
		winner, count := -1, 0
		for i, ok := range wins {
			if ok {
				winner, count = i, count+1
			}
		}
		if count != 1 {
			t.Fatalf("%d of %d concurrent %s succeeded, want exactly 1", count, n, what)
		}
		return winner
	}

	e.must(kv.Set(e.ctx, "token", []byte("secret"), 0))
	race("Deletes", func(int) (bool, error) { return kv.Delete(e.ctx, "token") })
	e.wantKV(kv, "token", nil, "after the Deletes")

	e.must(kv.Set(e.ctx, "state", []byte("v0"), 0))
	w := race("CompareAndSets", func(i int) (bool, error) {
		return kv.CompareAndSet(e.ctx, "state", []byte("v0"), fmt.Appendf(nil, "v1-%d", i), 0)
	})
	e.wantKV(kv, "state", fmt.Appendf(nil, "v1-%d", w), "the winner's value")

	w = race("CompareAndSets from absent", func(i int) (bool, error) {
		return kv.CompareAndSet(e.ctx, "fresh", nil, fmt.Appendf(nil, "f-%d", i), 0)
	})
	e.wantKV(kv, "fresh", fmt.Appendf(nil, "f-%d", w), "the winner's value")
}

// kvTTL is the expiry testKVTTL gives its keys: short, for backends without
// FastForward make the suite wait for it, but well above a few round trips.
const kvTTL = 250 * time.Millisecond

// testKVTTL: Set and CompareAndSet with a ttl expire the key; a ttl of 0 stores
// without expiry, removing an earlier one.
func testKVTTL(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, kv := e.ctx, e.s.PluginKV("ttl")
	t0 := time.Now()
	e.must(kv.Set(ctx, "short", []byte("s"), kvTTL))
	if ok, err := kv.CompareAndSet(ctx, "cas-short", nil, []byte("c"), kvTTL); err != nil || !ok {
		t.Fatalf("CompareAndSet with a ttl = %v, %v", ok, err)
	}
	e.must(kv.Set(ctx, "sub-ms", []byte("m"), time.Microsecond)) // rounds up, never "no expiry"
	e.must(kv.Set(ctx, "reset", []byte("r"), kvTTL))
	e.must(kv.Set(ctx, "reset", []byte("r2"), 0))
	tKeep := time.Now()
	e.must(kv.Set(ctx, "keep", []byte("k"), kvTTL))
	keep, err := kv.CompareAndSet(ctx, "keep", []byte("k"), []byte("k2"), 0)
	e.must(err)
	if !keep {
		if time.Since(tKeep) < kvTTL {
			t.Error("CompareAndSet without a ttl of a key just set failed")
		} else {
			t.Logf("the machine took %v to Set and CompareAndSet: not checking that ttl 0 removes an expiry", time.Since(tKeep))
		}
	}
	e.must(kv.Set(ctx, "long", []byte("l"), time.Hour))
	if time.Since(t0) < kvTTL/2 {
		e.wantKV(kv, "short", []byte("s"), "a key before its ttl")
	}

	wait := kvTTL + 20*time.Millisecond
	if h.FastForward != nil {
		h.FastForward(t, e.s, wait)
	} else {
		time.Sleep(wait)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, key := range []string{"short", "cas-short", "sub-ms"} {
		for {
			_, ok := e.kvGet(kv, key)
			if !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%q is still there %v after its ttl of %v", key, time.Since(t0), kvTTL)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	e.wantKV(kv, "reset", []byte("r2"), "a key Set again without a ttl")
	if keep {
		e.wantKV(kv, "keep", []byte("k2"), "a key CompareAndSet without a ttl")
	}
	e.wantKV(kv, "long", []byte("l"), "a key with a long ttl")
}
