package redisstore_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
)

// testIndexUpgrade writes users and their keys with the single list indexes
// of the layout before the buckets (P idx:users, P idx:creds), as a store
// whose earlier upgrade died midway left them (part of the members already in
// their buckets and counted, its lock still held for a moment), and starts
// two stores on it at once, one listing while the other upgrades: both
// upgrade safely, every page reads the users and keys in order with exact
// totals, Doctor finds nothing to repair, and no old key is left.
// fastForward moves the key expiries of a server whose clock does not move by
// itself (miniredis); nil for a real one.
func testIndexUpgrade(t *testing.T, opts *redis.UniversalOptions, admin redis.UniversalClient, fastForward func(time.Duration)) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	prefix := newPrefix()
	stamp := `"createdAt":"2025-03-04T05:06:07.123Z","updatedAt":"2025-03-04T05:06:07.123Z"`
	var numbers []int64
	for n := int64(1); n <= 400; n++ {
		if n%7 != 0 && (n < 130 || n > 260) { // gaps, and a whole bucket empty
			numbers = append(numbers, n)
		}
	}
	uids := map[int64]string{}
	_, err := admin.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, n := range numbers {
			uid := core.NewID()
			uids[n] = uid
			num := strconv.FormatInt(n, 10)
			slot := prefix + "u:{" + uid + "}"
			p.Set(ctx, slot, `{"id":"`+uid+`","number":`+num+`,"username":"up`+num+`","isActive":true,`+stamp+`}`, 0)
			keyID := "upkey" + num
			p.Set(ctx, slot+":cred:key-auth:"+keyID, `{"type":"key-auth","id":"`+keyID+`","seq":`+num+`,"consumerId":"`+uid+
				`","consumerKind":"user","userId":"`+uid+`","isActive":true,"secret":"`+core.HashSHA256("s")+`",`+stamp+`}`, 0)
			p.ZAdd(ctx, slot+":creds", redis.Z{Score: float64(n), Member: "key-auth:" + keyID})
			p.ZAdd(ctx, prefix+"idx:users", redis.Z{Score: float64(n), Member: uid})
			p.ZAdd(ctx, prefix+"idx:creds", redis.Z{Score: float64(n), Member: uid + "/key-auth/" + keyID})
		}
		p.Set(ctx, prefix+"seq:users", "400", 0)
		p.Set(ctx, prefix+"seq:creds", "400", 0)
		// What an upgrade that died after its first batches leaves: members
		// of the first buckets moved and counted, and its lock until it
		// expires.
		for _, n := range numbers[:40] {
			p.ZAdd(ctx, prefix+"{idx:users}:0", redis.Z{Score: float64(n), Member: uids[n]})
		}
		p.Set(ctx, prefix+"{idx:users}:count", "40", 0)
		p.Set(ctx, prefix+"{idx:users}:upgrading", "a dead instance", 300*time.Millisecond)
		return nil
	})
	must(t, err)
	if fastForward != nil {
		time.AfterFunc(300*time.Millisecond, func() { fastForward(time.Second) })
	}

	stores := make([]*redisstore.Store, 2)
	for i := range stores {
		stores[i] = redisstore.New(redisstore.NewClient(opts), redisstore.Options{Prefix: prefix})
		defer stores[i].Close()
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = stores[0].UpgradeIndexes(ctx) })
	wg.Go(func() {
		// A list's first read waits for the upgrade (its read deadline may
		// pass first: the upgrade goes on, and the call is retried).
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := stores[1].ListUsers(ctx, core.ListOptions{Count: 5})
			if err == nil || core.KindOf(err) != core.Unavailable || time.Now().After(deadline) {
				errs[1] = err
				return
			}
		}
	})
	wg.Wait()
	for _, err := range errs {
		must(t, err)
	}
	keys := rawKeys(t, admin, prefix)
	for _, k := range []string{"idx:users", "idx:creds", "{idx:users}:upgrading", "{idx:creds}:upgrading"} {
		if slices.Contains(keys, k) {
			t.Errorf("%s left after the upgrade", k)
		}
	}
	for _, s := range stores {
		var got []int64
		for start := int64(0); ; {
			p, err := s.ListUsers(ctx, core.ListOptions{Start: start, Count: 7})
			must(t, err)
			if p.Total != int64(len(numbers)) {
				t.Fatalf("ListUsers after the upgrade: Total %d, want %d", p.Total, len(numbers))
			}
			for _, u := range p.Items {
				got = append(got, u.Number)
			}
			if start = p.NextKey; start == 0 {
				break
			}
		}
		if !slices.Equal(got, numbers) {
			t.Errorf("the users listed after the upgrade: %v, want %v", got, numbers)
		}
		var seqs []int64
		for start := int64(0); ; {
			p, err := s.ListCredentials(ctx, core.ListOptions{Start: start, Count: 25})
			must(t, err)
			if p.Total != int64(len(numbers)) {
				t.Fatalf("ListCredentials after the upgrade: Total %d, want %d", p.Total, len(numbers))
			}
			for _, c := range p.Items {
				seqs = append(seqs, c.Seq)
				if c.UserID != uids[c.Seq] {
					t.Errorf("credential %d of user %q, want %q", c.Seq, c.UserID, uids[c.Seq])
				}
			}
			if start = p.NextKey; start == 0 {
				break
			}
		}
		if !slices.Equal(seqs, numbers) {
			t.Errorf("the credentials listed after the upgrade: %v, want %v", seqs, numbers)
		}
	}
	rep, err := stores[0].Doctor(ctx, false)
	must(t, err)
	if i := slices.IndexFunc(rep.DanglingIndex, func(e string) bool { return strings.HasPrefix(e, "idx:") }); i >= 0 {
		t.Errorf("Doctor after the upgrade: %q", rep.DanglingIndex)
	}
	// Doctor puts a counter that something else changed right again.
	must(t, admin.Set(ctx, prefix+"{idx:creds}:count", "3", 0).Err())
	for i, repair := range []bool{false, true, false} {
		rep, err := stores[0].Doctor(ctx, repair)
		must(t, err)
		found := slices.ContainsFunc(rep.DanglingIndex, func(e string) bool { return strings.HasPrefix(e, "idx:creds count 3,") })
		if want := i < 2; found != want {
			t.Errorf("Doctor(repair %v) run %d after the counter was changed: DanglingIndex %q, want the counter reported: %v", repair, i, rep.DanglingIndex, want)
		}
	}
	if n, err := admin.Get(ctx, prefix+"{idx:creds}:count").Int(); err != nil || n != len(numbers) {
		t.Errorf("{idx:creds}:count after doctor --repair: %d, %v; want %d", n, err, len(numbers))
	}
}
