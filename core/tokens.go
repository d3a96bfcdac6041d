package core

import (
	"math/big"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// Token prefixes: a secret scanner recognises them, and /verify knows
// which record to read.
const (
	PrefixSession    = "gths_" // login session tokens
	PrefixOAuth      = "gtho_" // OAuth access tokens
	PrefixUserSecret = "gthu_" // user secrets
)

const (
	tokenUserWidth   = 22 // base62 characters of a user id's 16 bytes
	tokenBytes       = 32 // 256 random bits
	tokenSecretWidth = 43 // their base62 characters
)

// NewToken returns a bearer token routed to userID: the prefix, the user id's 16
// bytes in 22 base62 characters, and 256 random bits (43 characters). Only the
// token's SHA-256 is stored, in its user's hash slot; the routing part lets the
// record and its owner's state be read in one round trip. The user id is no
// secret (the token's holder is that user or its app), and a token forged with
// another user's id finds no record.
func NewToken(prefix, userID string) string {
	id, err := uuid.Parse(userID)
	if err != nil {
		panic("core.NewToken: user id is not a UUID: " + userID) // ids are made by NewID
	}
	s := new(big.Int).SetBytes(id[:]).Text(62)
	return prefix + strings.Repeat("0", tokenUserWidth-len(s)) + s + NewSecret("", tokenBytes)
}

// TokenUser returns the user id a token of that prefix is routed to, and false
// when the token is not one of that kind.
func TokenUser(prefix, token string) (string, bool) {
	rest, ok := strings.CutPrefix(token, prefix)
	if !ok || len(rest) != tokenUserWidth+tokenSecretWidth {
		return "", false
	}
	n, ok := new(big.Int).SetString(rest[:tokenUserWidth], 62)
	if !ok || n.BitLen() > 128 {
		return "", false
	}
	var id uuid.UUID
	n.FillBytes(id[:])
	return id.String(), true
}

// secretPrefixes start the secrets Gatehouse hands out, admin keys and the GL
// dialect's keys included.
var secretPrefixes = []string{PrefixSession, PrefixOAuth, PrefixUserSecret, "gtha_", "sk-user-", "sk-client-"}

// quoteRef quotes a reference taken from a request path for an error message,
// unless it may be a secret typed into the wrong place (a token, or an
// apikey's KEYID:SECRET): names and ids may be echoed, secrets never.
func quoteRef(ref string) string {
	if strings.Contains(ref, ":") || len(ref) > maxNameLen {
		return "(value not shown)"
	}
	for _, p := range secretPrefixes {
		if strings.HasPrefix(ref, p) {
			return "(value not shown)"
		}
	}
	return strconv.Quote(ref)
}
