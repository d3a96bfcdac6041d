package email_test

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/plugins/sdk"
)

// memKV is an in-memory sdk.KV with expiry on a clock the test moves.
type memKV struct {
	mu     sync.Mutex
	offset time.Duration // added to time.Now
	data   map[string]memEntry
	ttls   map[string]time.Duration // the TTL of every Set, by key
}

type memEntry struct {
	value   []byte
	expires time.Time // zero: never
}

var _ sdk.KV = (*memKV)(nil)

func newMemKV() *memKV {
	return &memKV{data: map[string]memEntry{}, ttls: map[string]time.Duration{}}
}

// advance moves the clock forward.
func (kv *memKV) advance(d time.Duration) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	kv.offset += d
}

// live returns the entry under key unless it is absent or expired; kv.mu is held.
func (kv *memKV) live(key string) (memEntry, bool) {
	e, ok := kv.data[key]
	if ok && !e.expires.IsZero() && !time.Now().Add(kv.offset).Before(e.expires) {
		delete(kv.data, key)
		return memEntry{}, false
	}
	return e, ok
}

func (kv *memKV) put(key string, value []byte, ttl time.Duration) {
	e := memEntry{value: bytes.Clone(value)}
	if ttl > 0 {
		e.expires = time.Now().Add(kv.offset + ttl)
	}
	kv.data[key] = e
	kv.ttls[key] = ttl
}

func (kv *memKV) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	e, ok := kv.live(key)
	return bytes.Clone(e.value), ok, nil
}

func (kv *memKV) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	kv.put(key, value, ttl)
	return nil
}

func (kv *memKV) Delete(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	_, ok := kv.live(key)
	delete(kv.data, key)
	return ok, nil
}

func (kv *memKV) CompareAndSet(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	e, ok := kv.live(key)
	if (old == nil && ok) || (old != nil && (!ok || !bytes.Equal(e.value, old))) {
		return false, nil
	}
	kv.put(key, value, ttl)
	return true, nil
}

// keys returns the live keys with prefix, sorted.
func (kv *memKV) keys(prefix string) []string {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	var keys []string
	for k := range kv.data {
		if _, ok := kv.live(k); ok && strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// dump returns every key and value, for leak checks.
func (kv *memKV) dump() string {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	var b strings.Builder
	for k, e := range kv.data {
		fmt.Fprintf(&b, "%s=%s\n", k, e.value)
	}
	return b.String()
}

// memLog is an sdk.HostLogger that keeps every line.
type memLog struct {
	mu    sync.Mutex
	lines []logLine
}

type logLine struct {
	level, msg string
	fields     map[string]string
}

var _ sdk.HostLogger = (*memLog)(nil)

func (l *memLog) Log(_ context.Context, level, msg string, fields map[string]string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, logLine{level, msg, fields})
}

func (l *memLog) all() []logLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]logLine(nil), l.lines...)
}

func (l *memLog) String() string {
	var b strings.Builder
	for _, line := range l.all() {
		fmt.Fprintf(&b, "%s %s %v\n", line.level, line.msg, line.fields)
	}
	return b.String()
}

// tokenRE matches a token: 43 base64url characters.
var tokenRE = regexp.MustCompile(`[A-Za-z0-9_-]{43}`)

// checkNoLeak fails t if s holds a token, a link, an email address, or one of
// the secrets.
func checkNoLeak(t *testing.T, what, s string, secrets ...string) {
	t.Helper()
	if tokenRE.MatchString(s) || strings.Contains(s, "token=") || strings.Contains(s, "@") {
		t.Errorf("%s holds a token, link or address:\n%s", what, s)
	}
	for _, secret := range secrets {
		if secret != "" && strings.Contains(s, secret) {
			t.Errorf("%s holds the secret %q:\n%s", what, secret, s)
		}
	}
}
