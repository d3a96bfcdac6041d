package core

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// Versions: every user, app, credential, scope, group, admin key and client has a version, a digest of
// what it holds, which the native admin API shows as a strong ETag. A write
// that names the versions it expects (a Precondition, from If-Match) checks
// it inside the store's optimistic transaction, so check and write are one
// atomic step: of N writers holding one version, exactly one wins.
//
// A version covers the object's own stored state and the state it shows by
// derivation (the effective isActive of an app or credential, a credential's
// effective scopes), so that a read's If-None-Match never hides a change.

// Version returns the user's version: versionOf's, in one pass when it can
// (appendUserCanonical).
func (u User) Version() string {
	if b, ok := appendUserCanonical(make([]byte, 0, 512), u); ok {
		return digest(b)
	}
	return versionOf(u)
}

// Version returns the app's version; its owner's state is part of it.
func (a App) Version() string { return versionOf(a) }

// Version returns the credential's version, of its effective scopes (as
// reads show them) and its owners' state.
func (c Credential) Version() string { return versionOf(c) }

// Version returns the scope's version: a new registration is a new version.
func (sc Scope) Version() string { return versionOf(sc) }

// Version returns the group's version.
func (g Group) Version() string { return versionOf(g) }

// Version returns the admin key's version. A key never changes once made:
// its last use is not part of it (nor its hash), so the version only tells
// one key from another.
func (k AdminKey) Version() string {
	k.LastUsedAt, k.Hash = time.Time{}, ""
	return versionOf(k)
}

// Version returns the client's version, of the client and its keys (in id
// order, whatever order they were read in).
func (c ClientWithKeys) Version() string {
	c.Keys = slices.Clone(c.Keys)
	slices.SortFunc(c.Keys, func(a, b ClientKey) int { return strings.Compare(a.ID, b.ID) })
	return versionOf(c)
}

// versionOf digests v's JSON in the canonical form an import compares
// (utcTimes: times in UTC, numbers as JSON reads them back, null, [] and {}
// dropped), so an object just written and the same object read back from the
// store have one version.
func versionOf(v any) string {
	b, err := json.Marshal(v)
	if err == nil {
		var generic any
		if err = json.Unmarshal(b, &generic); err == nil {
			b, err = json.Marshal(utcTimes(generic))
		}
	}
	if err != nil {
		return "" // domain types always marshal; "" matches no If-Match but *
	}
	return digest(b)
}

// digest is a version: 18 bytes of the canonical form's SHA-256, base64url.
func digest(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return base64.RawURLEncoding.EncodeToString(sum[:18])
}

// Precondition is what a writer asserts about the current version of the
// object it writes (RFC 9110 If-Match). The zero value holds always.
type Precondition struct {
	// IfMatch lists the versions one of which must be current; "*" matches any
	// existing object. A weak tag (W/"...") never matches: If-Match compares
	// strongly. Nil: no condition.
	IfMatch []string
}

// IsZero reports whether p asserts nothing.
func (p Precondition) IsZero() bool { return p.IfMatch == nil }

// Holds reports whether an object of that version meets p.
func (p Precondition) Holds(version string) bool {
	return p.IfMatch == nil || slices.Contains(p.IfMatch, "*") || slices.Contains(p.IfMatch, version)
}

// check answers PreconditionFailed when an object of that version does not
// meet p; nothing may be written then.
func (p Precondition) check(op, what, version string) error {
	if p.Holds(version) {
		return nil
	}
	return Errorf(PreconditionFailed, op, "the %s has changed since the version If-Match names: read it again, then retry", what)
}

// precondition returns the one precondition of a variadic argument (the zero
// one when none is given).
func precondition(pre []Precondition) Precondition {
	if len(pre) == 0 {
		return Precondition{}
	}
	return pre[0]
}

// checkVersion returns, for a Store method's check argument, a check of p on
// the object the store reads inside its transaction (derive adds what the
// object shows by derivation); none when p asserts nothing.
func checkVersion[T interface{ Version() string }](p Precondition, op, what string, derive func(*T)) []func(T) error {
	if p.IsZero() {
		return nil
	}
	return []func(T) error{func(v T) error {
		if derive != nil {
			derive(&v)
		}
		return p.check(op, what, v.Version())
	}}
}
