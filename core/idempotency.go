package core

import (
	"context"
	"encoding/json"
	"time"
)

// Idempotency keys: a create sent with an Idempotency-Key is done once. The
// first request claims the key; a retry with the same request within
// IdempotencyTTL gets the first answer again (as recorded: never a secret in
// clear), a different request with the same key is Invalid, and a retry while
// the first is still in flight is Conflict. Only a successful answer is
// recorded: a failed request releases its key, so it can be retried as it is.
//
// Records live in the host's own key-value namespace "_idem", keyed by the
// SHA-256 of the caller (an admin key id) and the key, so two callers never
// share a key and a key's text is never a Redis key.
const (
	// IdempotencyTTL is how long a first answer is kept for replays.
	IdempotencyTTL = 24 * time.Hour
	// idempotencyClaimTTL bounds a claim whose request never completes (a
	// crash): after it the key is free again.
	idempotencyClaimTTL = time.Minute
	kvIdempotency       = "_idem"
	maxIdempotencyKey   = 255
)

// IdempotentAnswer is the answer recorded for an idempotency key, replayed to
// retries: the status, the headers worth replaying, and the body, which the
// surface recorded without any secret.
type IdempotentAnswer struct {
	Status int               `json:"status"`
	Header map[string]string `json:"header,omitempty"`
	Body   []byte            `json:"body,omitempty"`
}

// idempotencyRecord is an idempotency key's record: a claim while its request
// is in flight (Answer nil), then the first answer.
type idempotencyRecord struct {
	Request string            `json:"request"` // the digest of the request the key was first used with
	Claim   string            `json:"claim"`   // random: tells this claim from a later one
	At      time.Time         `json:"at"`
	Answer  *IdempotentAnswer `json:"answer,omitempty"`
}

// IdempotencyClaim is a claimed idempotency key: its holder does the request,
// then records the answer (Complete) or lets the key go (Release).
type IdempotencyClaim struct {
	kv      KV
	key     string
	claimed []byte
	rec     idempotencyRecord
}

// ClaimIdempotency claims the idempotency key a caller sent with a request
// (request is a digest of what the request does: method, target, body). It
// returns the first answer when the key was used with this request and
// answered; otherwise a claim, which the caller completes or releases. Malformed
// for a key that is empty, longer than 255 characters or not printable ASCII;
// Invalid when the key was used with a different request; Conflict while the
// key's first request is in flight.
func (s *Service) ClaimIdempotency(ctx context.Context, caller, key, request string) (*IdempotentAnswer, *IdempotencyClaim, error) {
	const op = "core.ClaimIdempotency"
	if key == "" || len(key) > maxIdempotencyKey || !printableASCII(key) {
		return nil, nil, Errorf(Malformed, op, "Idempotency-Key must be 1 to %d printable ASCII characters", maxIdempotencyKey)
	}
	kv := s.store.PluginKV(kvIdempotency)
	k := HashSHA256(caller + "\n" + key)
	rec := idempotencyRecord{Request: request, Claim: NewSecret("", 12), At: s.Now()}
	claimed, err := json.Marshal(rec)
	if err != nil {
		return nil, nil, E(Internal, op, err)
	}
	for range 3 { // a record that expires between two steps is looked at again
		ok, err := kv.CompareAndSet(ctx, k, nil, claimed, idempotencyClaimTTL)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			return nil, &IdempotencyClaim{kv: kv, key: k, claimed: claimed, rec: rec}, nil
		}
		b, found, err := kv.Get(ctx, k)
		if err != nil {
			return nil, nil, err
		}
		if !found {
			continue
		}
		var first idempotencyRecord
		if err := json.Unmarshal(b, &first); err != nil {
			return nil, nil, E(Internal, op, err)
		}
		switch {
		case first.Request != request:
			return nil, nil, InvalidFields(op, FieldError{Field: "Idempotency-Key", Detail: "was used with a different request: a new request needs a new key"})
		case first.Answer == nil:
			return nil, nil, &Error{Kind: Conflict, Op: op, Msg: "the first request with this Idempotency-Key is still in progress: retry in a moment", RetryAfter: time.Second}
		}
		return first.Answer, nil, nil
	}
	return nil, nil, Errorf(Conflict, op, "the Idempotency-Key is changing hands: retry in a moment")
}

// Complete records the answer to a claimed key's request for IdempotencyTTL.
// When the claim was lost meanwhile (it outlived idempotencyClaimTTL), nothing is
// recorded and false is returned.
func (c *IdempotencyClaim) Complete(ctx context.Context, a IdempotentAnswer) (bool, error) {
	rec := c.rec
	rec.Answer = &a
	b, err := json.Marshal(rec)
	if err != nil {
		return false, E(Internal, "core.IdempotencyClaim.Complete", err)
	}
	return c.kv.CompareAndSet(ctx, c.key, c.claimed, b, IdempotencyTTL)
}

// Release lets a claimed key go after its request failed, so that it can be
// retried. Best effort: a claim left behind expires after idempotencyClaimTTL.
// (The key-value store has no compare-and-delete: a request that outlived its
// claim's minute would free a later claim of the same key, never an answer.)
func (c *IdempotencyClaim) Release(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	if b, found, err := c.kv.Get(ctx, c.key); err == nil && found && string(b) == string(c.claimed) {
		_, _ = c.kv.Delete(ctx, c.key)
	}
}

// printableASCII reports whether s holds only printable ASCII (space included).
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
