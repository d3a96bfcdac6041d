package core

import (
	"context"
	"encoding/base64"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestNewSecret(t *testing.T) {
	re := regexp.MustCompile(`^gthu_[0-9A-Za-z]{43}$`) // 256 bits in base62
	seen := map[string]bool{}
	for range 200 {
		s := NewSecret("gthu_", 32)
		if !re.MatchString(s) {
			t.Fatalf("NewSecret = %q, want %v", s, re)
		}
		if seen[s] {
			t.Fatalf("NewSecret repeated %q", s)
		}
		seen[s] = true
	}
	if got := len(NewSecret("", 16)); got != 22 {
		t.Errorf("16 bytes: %d characters, want 22", got)
	}
}

func TestHashSHA256(t *testing.T) {
	const want = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := HashSHA256("abc"); got != want {
		t.Errorf("HashSHA256(abc) = %q, want %q", got, want)
	}
}

func TestHasherRoundTrip(t *testing.T) {
	h := NewHasher(TestArgon2, 0)
	phc, err := h.Hash(t.Context(), "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !re.MatchString(phc) {
		t.Fatalf("Hash = %q, want %v", phc, re)
	}
	if ok, err := h.Verify(t.Context(), phc, "correct horse"); !ok || err != nil {
		t.Errorf("Verify(right) = %v, %v", ok, err)
	}
	if ok, err := h.Verify(t.Context(), phc, "correct horsf"); ok || err != nil {
		t.Errorf("Verify(wrong) = %v, %v", ok, err)
	}
	if phc2, _ := h.Hash(t.Context(), "correct horse"); phc2 == phc {
		t.Error("two hashes of one password are equal: salt not random")
	}
}

func TestHasherVerifyOtherParams(t *testing.T) {
	h := NewHasher(TestArgon2, 1)
	// The reference implementation's output (argon2 CLI, RFC 9106 parameters).
	const ref = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	if ok, err := h.Verify(t.Context(), ref, "password"); !ok || err != nil {
		t.Errorf("Verify(reference) = %v, %v", ok, err)
	}
	other := NewHasher(Argon2Params{Memory: 128, Iterations: 3, Parallelism: 2, SaltLen: 8, KeyLen: 16}, 1)
	phc, err := other.Hash(t.Context(), "s3cret-pass")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=128,t=3,p=2$") {
		t.Fatalf("Hash = %q", phc)
	}
	if ok, err := h.Verify(t.Context(), phc, "s3cret-pass"); !ok || err != nil {
		t.Errorf("Verify(other params) = %v, %v", ok, err)
	}
}

func TestHasherMalformed(t *testing.T) {
	h := NewHasher(TestArgon2, 1)
	good, _ := h.Hash(t.Context(), "password")
	parts := strings.Split(good, "$")
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	for _, phc := range []string{
		"",
		"sha256:abc",
		"$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		with(2, "v=16"),
		with(3, "m=64,t=1"),
		with(3, "t=1,m=64,p=1"),
		with(3, "m=64,t=0,p=1"),
		with(3, "m=64,t=1,p=0"),
		with(3, "m=64,t=1,p=256"),
		with(3, "m=99999999,t=1,p=1"),
		with(3, "m=-1,t=1,p=1"),
		with(4, "!!"),
		with(4, "c2FsdA"), // 4 bytes: too short a salt
		with(5, ""),
		good + "$",
	} {
		ok, err := h.Verify(t.Context(), phc, "password")
		if ok || KindOf(err) != Internal {
			t.Errorf("Verify(%q) = %v, %v; want internal error", phc, ok, err)
		}
		if err != nil && strings.Contains(err.Error(), "password") {
			t.Errorf("error %q echoes the password", err)
		}
	}
}

// TestHasherCap checks that max=1 lets one hash run at a time, that a waiter gives
// up when its ctx ends, and that it runs once the slot is free.
func TestHasherCap(t *testing.T) {
	h := NewHasher(TestArgon2, 1)
	var inside, peak atomic.Int32
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	h.inSlot = func() {
		n := inside.Add(1)
		if n > peak.Load() {
			peak.Store(n)
		}
		entered <- struct{}{}
		<-release
		inside.Add(-1)
	}

	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := h.Hash(context.Background(), "first-password"); err != nil {
			t.Error(err)
		}
	})
	<-entered // the first hash holds the only slot

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() {
		_, err := h.Hash(ctx, "second-password")
		done <- err
	}()
	cancel()
	if err := <-done; KindOf(err) != Unavailable || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("Hash with a cancelled ctx while waiting = %v, want Unavailable (context canceled)", err)
	}

	wg.Go(func() {
		if ok, err := h.Verify(context.Background(), "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "x"); ok || err != nil {
			t.Errorf("Verify = %v, %v", ok, err)
		}
	})
	wg.Go(func() { h.Dummy(context.Background(), "unknown-user-password") })
	for range 3 { // the first hash, then the two waiters, one at a time
		release <- struct{}{}
	}
	wg.Wait()
	if got := len(entered); got != 2 {
		t.Errorf("%d more entries, want 2 (the verify and the dummy)", got)
	}
	if p := peak.Load(); p != 1 {
		t.Errorf("peak concurrency = %d, want 1", p)
	}
}

func testKey(b byte) string {
	return base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(rune(b)), 32)))
}

func TestParseKeyring(t *testing.T) {
	raw := []byte(strings.Repeat("k", 32))
	good := []string{
		"k1:" + base64.StdEncoding.EncodeToString(raw),
		"k1:" + base64.RawStdEncoding.EncodeToString(raw),
		"k1:" + base64.URLEncoding.EncodeToString([]byte(strings.Repeat("\xff", 32))),
		"k1:" + base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("\xfe", 32))),
		"new_2:" + testKey('a') + ", old-1:" + testKey('b'),
	}
	for _, spec := range good {
		if _, err := ParseKeyring(spec); err != nil {
			t.Errorf("ParseKeyring(%q) = %v", spec, err)
		}
	}
	short := base64.StdEncoding.EncodeToString([]byte("too short"))
	bad := []struct{ spec, want string }{
		{"", "entry 1"},
		{testKey('a'), "entry 1: want id:base64key"},
		{"k1:" + short, `entry 1: key "k1" must be 32 bytes`},
		{"k1:" + testKey('a') + ",k1:" + testKey('b'), `entry 2: duplicate id "k1"`},
		{"k1:" + testKey('a') + ",bad id:" + testKey('b'), "entry 2: id must match"},
		{"k1:" + testKey('a') + ",:" + testKey('b'), "entry 2: id must match"},
		{"k1:not base64 at all!", `entry 1: key "k1"`},
	}
	for _, tt := range bad {
		_, err := ParseKeyring(tt.spec)
		if err == nil {
			t.Errorf("ParseKeyring(%q) = nil error", tt.spec)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tt.want) || !strings.Contains(msg, "GATEHOUSE_ENCRYPTION_KEYS") {
			t.Errorf("ParseKeyring(%q) = %q, want it to contain %q", tt.spec, msg, tt.want)
		}
		for _, secret := range []string{testKey('a'), testKey('b'), short, "not base64"} {
			if strings.Contains(msg, secret) {
				t.Errorf("error %q echoes key material", msg)
			}
		}
	}
}

func TestKeyring(t *testing.T) {
	old, err := ParseKeyring("old:" + testKey('o'))
	if err != nil {
		t.Fatal(err)
	}
	aad := []byte("jwt/key-1")
	blob, err := old.Encrypt([]byte("a jwt secret of at least 32 bytes!"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^aesgcm:old:[A-Za-z0-9_-]+$`).MatchString(blob) {
		t.Fatalf("Encrypt = %q", blob)
	}
	if got, err := old.Decrypt(blob, aad); err != nil || string(got) != "a jwt secret of at least 32 bytes!" {
		t.Errorf("Decrypt = %q, %v", got, err)
	}
	if _, err := old.Decrypt(blob, []byte("jwt/key-2")); KindOf(err) != Internal {
		t.Errorf("Decrypt with a wrong aad = %v, want internal", err)
	}
	tampered := []byte(blob)
	tampered[len(tampered)-3] ^= 'A' ^ 'B'
	if tampered[len(tampered)-3] == blob[len(blob)-3] {
		tampered[len(tampered)-3] = 'Q'
	}
	for _, b := range []string{string(tampered), blob[:len(blob)-4], "aesgcm:old:", "aesgcm:old:!!!", "aesgcm:old", "nope"} {
		if _, err := old.Decrypt(b, aad); KindOf(err) != Internal {
			t.Errorf("Decrypt(%q) = %v, want internal", b, err)
		}
	}

	// Rotation: a new primary encrypts, the old key still decrypts.
	both, err := ParseKeyring("new:" + testKey('n') + ",old:" + testKey('o'))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := both.Decrypt(blob, aad); err != nil || string(got) != "a jwt secret of at least 32 bytes!" {
		t.Errorf("Decrypt after rotation = %q, %v", got, err)
	}
	blob2, _ := both.Encrypt([]byte("x"), nil)
	if !strings.HasPrefix(blob2, "aesgcm:new:") {
		t.Errorf("Encrypt after rotation = %q, want the new key", blob2)
	}
	_, err = old.Decrypt(blob2, nil)
	if KindOf(err) != Unavailable || !strings.Contains(err.Error(), `"new"`) || !strings.Contains(err.Error(), "GATEHOUSE_ENCRYPTION_KEYS") {
		t.Errorf("Decrypt under an unknown key = %v, want unavailable naming the key and the setting", err)
	}

	eph := NewEphemeralKeyring()
	blob3, _ := eph.Encrypt([]byte("y"), aad)
	if got, err := eph.Decrypt(blob3, aad); !strings.HasPrefix(blob3, "aesgcm:ephemeral:") || err != nil || string(got) != "y" {
		t.Errorf("ephemeral round trip: %q, %q, %v", blob3, got, err)
	}
}

func TestNilKeyring(t *testing.T) {
	var k *Keyring
	const want = "encryption key not configured: set GATEHOUSE_ENCRYPTION_KEYS"
	_, err := k.Encrypt([]byte("x"), nil)
	if KindOf(err) != Unavailable || MessageOf(err) != want {
		t.Errorf("nil Encrypt = %v", err)
	}
	_, err = k.Decrypt("aesgcm:k:AAAA", nil)
	if KindOf(err) != Unavailable || MessageOf(err) != want {
		t.Errorf("nil Decrypt = %v", err)
	}
}

func TestMatchesSHA256(t *testing.T) {
	sha := HashSHA256("gtha_secret")
	for _, tt := range []struct {
		name, stored, presented string
		want                    bool
	}{
		{"ok", sha, "gtha_secret", true},
		{"upper-case hex", "sha256:" + strings.ToUpper(sha[7:]), "gtha_secret", true},
		{"wrong", sha, "gtha_secreT", false},
		{"short", sha[:len(sha)-2], "gtha_secret", false},
		{"malformed", "sha256:zz", "x", false},
		{"not hex", sha[:len(sha)-1] + "g", "gtha_secret", false},
		{"odd length", sha + "0", "gtha_secret", false},
		{"another form", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA", "x", false},
		{"plain", "plain", "plain", false},
		{"empty", "", "", false},
	} {
		if got := MatchesSHA256(tt.stored, tt.presented); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func BenchmarkHash(b *testing.B) {
	h := NewHasher(DefaultArgon2, 0)
	for b.Loop() {
		if _, err := h.Hash(b.Context(), "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHashSHA256(b *testing.B) {
	s := NewSecret("gths_", 32)
	for b.Loop() {
		HashSHA256(s)
	}
}
