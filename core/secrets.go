package core

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Stored secret forms. Server-generated secrets, and client-chosen
// key and oauth2 secrets, are stored as "sha256:<hex>"; passwords as argon2id PHC
// strings; jwt key secrets as "aesgcm:<keyid>:<base64url>" blobs.
const (
	sha256Prefix = "sha256:"
	argon2Prefix = "$argon2id$"
	aesgcmPrefix = "aesgcm:"
)

// NewSecret returns prefix followed by n random bytes (crypto/rand) in base62
// ([0-9A-Za-z], no padding). The encoding has a fixed length for a given n, so
// every secret of one kind looks alike.
func NewSecret(prefix string, n int) string {
	if n <= 0 {
		return prefix
	}
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	top := new(big.Int).Lsh(big.NewInt(1), uint(8*n))
	width := len(top.Sub(top, big.NewInt(1)).Text(62))
	s := new(big.Int).SetBytes(b).Text(62)
	return prefix + strings.Repeat("0", width-len(s)) + s
}

// HashSHA256 returns "sha256:" followed by the lower-case hex SHA-256 of secret.
func HashSHA256(secret string) string { return sha256Form(sha256.Sum256([]byte(secret))) }

// sha256Form is the stored form of a SHA-256 digest, as HashSHA256 gives it.
func sha256Form(sum [sha256.Size]byte) string { return sha256Prefix + hex.EncodeToString(sum[:]) }

// Argon2Params are argon2id parameters: Memory in KiB, SaltLen and KeyLen in bytes.
type Argon2Params struct {
	Memory      uint32
	Iterations  uint32
	Parallelism uint8
	SaltLen     uint32
	KeyLen      uint32
}

// DefaultArgon2 is OWASP's minimum for argon2id: 19 MiB, 2 iterations, 1 lane.
var DefaultArgon2 = Argon2Params{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}

// TestArgon2 is a cheap parameter set for tests only.
var TestArgon2 = Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

// Limits on parameters read from a stored PHC string, so that a corrupt or hostile
// record cannot make one Verify take gigabytes or minutes.
const (
	maxArgon2Memory     = 1 << 22 // KiB: 4 GiB
	maxArgon2Iterations = 1 << 10
	maxArgon2Len        = 1 << 10 // salt and key, bytes
)

// Hasher hashes and verifies passwords with argon2id, at most max at once: the
// rest wait for a slot (or for their ctx to end), so a burst of logins cannot
// starve other work of CPU and memory.
type Hasher struct {
	p   Argon2Params
	sem chan struct{}
	// inSlot, when set (by tests), is called while a slot is held.
	inSlot func()
}

// NewHasher returns a Hasher that hashes with p, at most max at once; max <= 0 means
// runtime.NumCPU().
func NewHasher(p Argon2Params, max int) *Hasher {
	if max <= 0 {
		max = runtime.NumCPU()
	}
	return &Hasher{p: p, sem: make(chan struct{}, max)}
}

// derive runs argon2id in a slot. It returns Unavailable if ctx ends while waiting.
func (h *Hasher) derive(ctx context.Context, op string, password, salt []byte, p Argon2Params) ([]byte, error) {
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, &Error{Kind: Unavailable, Op: op, Msg: "password hashing is busy", Err: ctx.Err()}
	}
	defer func() { <-h.sem }()
	if h.inSlot != nil {
		h.inSlot()
	}
	return argon2.IDKey(password, salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen), nil
}

// Hash returns the PHC string of password, "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>"
// with salt and hash in unpadded standard base64, as the reference implementation
// writes it. It returns Unavailable if ctx ends while waiting for a slot.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, h.p.SaltLen)
	rand.Read(salt)
	key, err := h.derive(ctx, "core.Hasher.Hash", []byte(password), salt, h.p)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, h.p.Memory, h.p.Iterations, h.p.Parallelism,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// Verify reports whether password matches the PHC string, using the parameters
// stored in it, and compares in constant time. A bcrypt hash (IsBcrypt) is
// checked as bcrypt. A malformed PHC string is Internal;
// Unavailable if ctx ends while waiting for a slot.
func (h *Hasher) Verify(ctx context.Context, phc, password string) (bool, error) {
	const op = "core.Hasher.Verify"
	if IsBcrypt(phc) { // brought by an Express Gateway import; rehashed on success by the callers that can
		err := bcrypt.CompareHashAndPassword([]byte(phc), []byte(password))
		if err != nil && !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, &Error{Kind: Internal, Op: op, Err: err}
		}
		return err == nil, nil
	}
	p, salt, want, err := parsePHC(phc)
	if err != nil {
		return false, &Error{Kind: Internal, Op: op, Err: err}
	}
	got, err := h.derive(ctx, op, []byte(password), salt, p)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// Dummy spends the work of a Verify with h's parameters, for an unknown user, so
// that timing does not tell unknown users from wrong passwords. The outcome is always
// a failed check, so there is nothing to return.
func (h *Hasher) Dummy(ctx context.Context, password string) {
	salt := make([]byte, h.p.SaltLen)
	_, _ = h.derive(ctx, "core.Hasher.Dummy", []byte(password), salt, h.p)
}

// parsePHC parses "$argon2id$v=19$m=M,t=T,p=P$salt$hash". Errors never include the
// string itself.
func parsePHC(phc string) (p Argon2Params, salt, key []byte, err error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errors.New("not an argon2id PHC string")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, errors.New("unsupported argon2 version")
	}
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return p, nil, nil, errors.New("malformed argon2 parameters")
	}
	var vals [3]uint64 // m, t, p
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(fields[i], name)
		n, perr := strconv.ParseUint(v, 10, 32)
		if !ok || perr != nil {
			return p, nil, nil, errors.New("malformed argon2 parameters")
		}
		vals[i] = n
	}
	m, t, par := vals[0], vals[1], vals[2]
	if t < 1 || t > maxArgon2Iterations || par < 1 || par > 255 || m < 8*par || m > maxArgon2Memory {
		return p, nil, nil, errors.New("argon2 parameters out of range")
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(salt) > maxArgon2Len || len(key) < 4 || len(key) > maxArgon2Len {
		return p, nil, nil, errors.New("malformed argon2 salt or hash")
	}
	p = Argon2Params{Memory: uint32(m), Iterations: uint32(t), Parallelism: uint8(par), SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	return p, salt, key, nil
}

// encryptionKeysSetting names the setting that holds the keyring.
const encryptionKeysSetting = "GATEHOUSE_ENCRYPTION_KEYS"

// Keyring holds AES-256 keys by id: the first one encrypts, all of them decrypt, so
// keys rotate by putting a new one first. A nil *Keyring is usable: Encrypt and
// Decrypt answer Unavailable naming the setting.
type Keyring struct {
	primary string
	keys    map[string]cipher.AEAD
}

// ParseKeyring parses GATEHOUSE_ENCRYPTION_KEYS: "id:base64key[,id:base64key]", each
// key 32 bytes in standard or URL base64, padded or not, each id [A-Za-z0-9_-]{1,32}
// and unique. Errors (Invalid) name the entry at fault, never the key material.
func ParseKeyring(spec string) (*Keyring, error) {
	const op = "core.ParseKeyring"
	k := &Keyring{keys: map[string]cipher.AEAD{}}
	for i, entry := range strings.Split(spec, ",") {
		bad := func(format string, args ...any) error {
			return Errorf(Invalid, op, "%s entry %d: %s", encryptionKeysSetting, i+1, fmt.Sprintf(format, args...))
		}
		id, b64, ok := strings.Cut(strings.TrimSpace(entry), ":")
		if !ok {
			return nil, bad("want id:base64key")
		}
		if !validKeyringID(id) {
			return nil, bad("id must match [A-Za-z0-9_-]{1,32}")
		}
		if _, dup := k.keys[id]; dup {
			return nil, bad("duplicate id %q", id)
		}
		key, err := decodeKey(b64)
		if err != nil {
			return nil, bad("key %q must be 32 bytes in base64", id)
		}
		if k.keys[id], err = newAEAD(key); err != nil {
			return nil, bad("key %q: %v", id, err)
		}
		if k.primary == "" {
			k.primary = id
		}
	}
	return k, nil
}

func validKeyringID(id string) bool {
	if len(id) < 1 || len(id) > 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, errors.New("not a 32-byte base64 key")
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// NewEphemeralKeyring returns a keyring with one random key, id "ephemeral", for
// the embedded default whose data does not outlive the process either.
func NewEphemeralKeyring() *Keyring {
	key := make([]byte, 32)
	rand.Read(key)
	aead, err := newAEAD(key)
	if err != nil {
		panic(err) // a 32-byte key is always a valid AES-256 key
	}
	return &Keyring{primary: "ephemeral", keys: map[string]cipher.AEAD{"ephemeral": aead}}
}

func errNoKeyring(op string) error {
	return Errorf(Unavailable, op, "encryption key not configured: set %s", encryptionKeysSetting)
}

// Encrypt seals plaintext with the primary key, binding aad (the record it belongs
// to), and returns "aesgcm:<keyid>:<base64url(nonce||ciphertext)>".
func (k *Keyring) Encrypt(plaintext, aad []byte) (string, error) {
	const op = "core.Keyring.Encrypt"
	if k == nil || k.primary == "" {
		return "", errNoKeyring(op)
	}
	aead := k.keys[k.primary]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	rand.Read(nonce)
	sealed := aead.Seal(nonce, nonce, plaintext, aad)
	return aesgcmPrefix + k.primary + ":" + base64.RawURLEncoding.EncodeToString(sealed), nil
}

// Decrypt opens a blob made by Encrypt under any key of the ring. An unknown key id
// is Unavailable naming the id and the setting; a malformed or tampered blob, or a
// wrong aad, is Internal.
func (k *Keyring) Decrypt(blob string, aad []byte) ([]byte, error) {
	const op = "core.Keyring.Decrypt"
	if k == nil || k.primary == "" {
		return nil, errNoKeyring(op)
	}
	rest, ok := strings.CutPrefix(blob, aesgcmPrefix)
	id, b64, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 {
		return nil, &Error{Kind: Internal, Op: op, Err: errors.New("not an aesgcm blob")}
	}
	aead, ok := k.keys[id]
	if !ok {
		if !validKeyringID(id) {
			return nil, &Error{Kind: Internal, Op: op, Err: errors.New("malformed aesgcm key id")}
		}
		return nil, Errorf(Unavailable, op, "encryption key %q not configured: add it to %s", id, encryptionKeysSetting)
	}
	sealed, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil || len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, &Error{Kind: Internal, Op: op, Err: errors.New("malformed aesgcm blob")}
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], aad)
	if err != nil {
		return nil, &Error{Kind: Internal, Op: op, Err: fmt.Errorf("aesgcm blob under key %q: %w", id, err)}
	}
	return plain, nil
}

// MatchesSHA256 reports whether presented matches a stored "sha256:<hex>" (a
// server-generated secret, or a client-chosen key or oauth2 secret), comparing in
// constant time. A stored value of another form never matches.
func MatchesSHA256(stored, presented string) bool {
	hexSum, ok := strings.CutPrefix(stored, sha256Prefix)
	var want [sha256.Size]byte
	if !ok || !decodeHex(want[:], hexSum) {
		return false
	}
	got := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// decodeHex decodes s, exactly len(dst) bytes in hex of either case, into
// dst, as hex.DecodeString would, without allocating (MatchesSHA256 runs on
// every /verify miss); false when s is not that.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
