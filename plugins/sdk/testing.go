package sdk

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
)

// TestProvider runs p over a real in-process gRPC connection, broker included,
// configures it with cfg and returns the host's view of it (the client the
// host uses, configured already) and the TestHost behind its KV and Log. All
// is closed when the test ends.
func TestProvider(t testing.TB, p IdentityProvider, cfg Config) (IdentityProvider, *TestHost) {
	t.Helper()
	c := dispense(t, KindIdentityProvider, &IdentityProviderPlugin{Impl: p}).(*IdentityProviderClient)
	host := NewTestHost()
	if err := c.Configure(t.Context(), cfg, host.Host()); err != nil {
		t.Fatalf("sdk.TestProvider: Configure: %v", err)
	}
	return c, host
}

// TestIntegration is TestProvider for an Integration.
func TestIntegration(t testing.TB, p Integration, cfg Config) (Integration, *TestHost) {
	t.Helper()
	c := dispense(t, KindIntegration, &IntegrationPlugin{Impl: p}).(*IntegrationClient)
	host := NewTestHost()
	if err := c.Configure(t.Context(), cfg, host.Host()); err != nil {
		t.Fatalf("sdk.TestIntegration: Configure: %v", err)
	}
	return c, host
}

// dispense serves p over go-plugin's in-process gRPC connection and returns
// the host's client for it.
func dispense(t testing.TB, kind string, p plugin.Plugin) any {
	t.Helper()
	// client.Close also stops the server, through go-plugin's controller.
	client, _ := plugin.TestPluginGRPCConn(t, false, plugin.PluginSet{kind: p})
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(kind)
	if err != nil {
		t.Fatalf("sdk: dispense %s: %v", kind, err)
	}
	return raw
}

// TestHost stands in for the host services in tests: an in-memory KV, whose
// clock Advance moves forward, and a log that keeps every line.
type TestHost struct {
	mu     sync.Mutex
	kv     map[string]testEntry
	offset time.Duration // added to the real time by Advance
	lines  []LogLine
}

type testEntry struct {
	value   []byte
	expires time.Time // zero: never
}

// LogLine is a line a plugin logged through Host.Log.
type LogLine struct {
	Level   string
	Message string
	Fields  map[string]string
}

// NewTestHost returns an empty TestHost.
func NewTestHost() *TestHost { return &TestHost{kv: map[string]testEntry{}} }

// Host returns h as a plugin's Host.
func (h *TestHost) Host() Host { return Host{KV: h, Log: h} }

// Advance moves the KV's clock forward by d, expiring what d outlives.
func (h *TestHost) Advance(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.offset += d
}

// Lines returns the lines logged so far.
func (h *TestHost) Lines() []LogLine {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.lines)
}

// Log keeps a line; it implements HostLogger.
func (h *TestHost) Log(_ context.Context, level, msg string, fields map[string]string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = append(h.lines, LogLine{Level: level, Message: msg, Fields: maps.Clone(fields)})
}

// get returns the live entry under key; h.mu is held.
func (h *TestHost) get(key string) (testEntry, bool) {
	e, ok := h.kv[key]
	if ok && !e.expires.IsZero() && !time.Now().Add(h.offset).Before(e.expires) {
		delete(h.kv, key)
		return testEntry{}, false
	}
	return e, ok
}

// put stores value under key; h.mu is held.
func (h *TestHost) put(key string, value []byte, ttl time.Duration) {
	e := testEntry{value: bytes.Clone(value)}
	if e.value == nil {
		e.value = []byte{}
	}
	if ttl > 0 {
		e.expires = time.Now().Add(h.offset + ttl)
	}
	h.kv[key] = e
}

// Get implements KV.
func (h *TestHost) Get(_ context.Context, key string) ([]byte, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.get(key)
	return bytes.Clone(e.value), ok, nil
}

// Set implements KV.
func (h *TestHost) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.put(key, value, ttl)
	return nil
}

// Delete implements KV.
func (h *TestHost) Delete(_ context.Context, key string) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.get(key)
	delete(h.kv, key)
	return ok, nil
}

// CompareAndSet implements KV.
func (h *TestHost) CompareAndSet(_ context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.get(key)
	if old == nil && ok || old != nil && (!ok || !bytes.Equal(e.value, old)) {
		return false, nil
	}
	h.put(key, value, ttl)
	return true, nil
}
