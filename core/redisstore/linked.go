package redisstore

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
)

// linkedRecord is the stored form of a core.LinkedAccount, one field of its
// user's P u:{uid}:linked hash. Tokens is the sealed blob as the caller gave
// it: the store never sees tokens in clear.
type linkedRecord struct {
	Connector      string    `json:"connector"`
	UserIdentifier string    `json:"userIdentifier"`
	DisplayName    string    `json:"displayName,omitempty"`
	Scopes         []string  `json:"scopes,omitempty"`
	Tokens         string    `json:"tokens,omitempty"`
	ExpiresAt      time.Time `json:"expiresAt,omitzero"`
	ConnectedAt    time.Time `json:"connectedAt"`
	UpdatedAt      time.Time `json:"updatedAt"`
}

func toLinkedRecord(a core.LinkedAccount) linkedRecord {
	return linkedRecord{
		Connector: a.Connector, UserIdentifier: a.UserIdentifier, DisplayName: a.DisplayName,
		Scopes: slices.Clone(a.Scopes), Tokens: a.Tokens, ExpiresAt: utcOrZero(a.ExpiresAt),
		ConnectedAt: a.ConnectedAt.UTC(), UpdatedAt: a.UpdatedAt.UTC(),
	}
}

func (r linkedRecord) account() core.LinkedAccount {
	return core.LinkedAccount{
		Connector: r.Connector, UserIdentifier: r.UserIdentifier, DisplayName: r.DisplayName,
		Scopes: r.Scopes, Tokens: r.Tokens, ExpiresAt: r.ExpiresAt,
		ConnectedAt: r.ConnectedAt, UpdatedAt: r.UpdatedAt,
	}
}

// validLinked reports whether an account's names can form its field: a
// connector holding ':' would make two accounts share one.
func validLinked(connector, userIdentifier string) bool {
	return connector != "" && !strings.Contains(connector, ":") && userIdentifier != ""
}

// linkedNotFound names the account that is not there (never its tokens).
func linkedNotFound(op, userID, connector, userIdentifier string) error {
	return core.Errorf(core.NotFound, op, "no %s account %q is linked to user %q", connector, userIdentifier, userID)
}

// PutLinkedAccount stores a user's integration account in the user's slot,
// replacing the one with the same Connector and UserIdentifier but keeping its
// ConnectedAt. A new account's ConnectedAt is a.ConnectedAt, else the store's
// clock; UpdatedAt is a.UpdatedAt, else the clock. It watches the user record,
// so a DeleteUser that commits first makes it answer NotFound, and one that
// commits after it deletes the account with the rest of the slot.
func (s *Store) PutLinkedAccount(ctx context.Context, userID string, a core.LinkedAccount) (core.LinkedAccount, error) {
	const op = "redisstore.PutLinkedAccount"
	switch {
	case a.Connector == "" || strings.Contains(a.Connector, ":"):
		return core.LinkedAccount{}, core.Errorf(core.Invalid, op, "connector %q is not valid: it must be non-empty and free of ':'", a.Connector)
	case a.UserIdentifier == "":
		return core.LinkedAccount{}, core.Errorf(core.Invalid, op, "userIdentifier is empty")
	case !validID(userID):
		return core.LinkedAccount{}, core.Errorf(core.NotFound, op, "user %q not found", userID)
	}
	ukey, lkey := s.k.user(userID), s.k.linked(userID)
	field := linkedField(a.Connector, a.UserIdentifier)
	var stored linkedRecord
	err := s.watch(ctx, op, "user "+strconv.Quote(userID), func(ctx context.Context, tx *redis.Tx) error {
		var user *redis.IntCmd
		var old *redis.StringCmd
		if _, err := tx.Pipelined(ctx, func(p redis.Pipeliner) error {
			user = p.Exists(ctx, ukey)
			old = p.HGet(ctx, lkey, field)
			return nil
		}); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		if user.Val() == 0 {
			return core.Errorf(core.NotFound, op, "user %q not found", userID)
		}
		r := toLinkedRecord(a)
		if data, err := old.Result(); err == nil {
			prev, err := decode[linkedRecord](op, lkey, data)
			if err != nil {
				return err
			}
			r.ConnectedAt = prev.ConnectedAt
		}
		if r.ConnectedAt.IsZero() || r.UpdatedAt.IsZero() {
			now, err := s.now(ctx)
			if err != nil {
				return err
			}
			if r.ConnectedAt.IsZero() {
				r.ConnectedAt = now.UTC()
			}
			if r.UpdatedAt.IsZero() {
				r.UpdatedAt = now.UTC()
			}
		}
		data, err := encode(op, r)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, lkey, field, data)
			return nil
		})
		stored = r
		return err
	}, ukey, lkey)
	if err != nil {
		return core.LinkedAccount{}, fail(ctx, op, err)
	}
	return stored.account(), nil
}

// LinkedAccounts lists a user's integration accounts, oldest first (by
// ConnectedAt, then connector and identifier); an unknown user has none.
func (s *Store) LinkedAccounts(ctx context.Context, userID string) ([]core.LinkedAccount, error) {
	const op = "redisstore.LinkedAccounts"
	out := []core.LinkedAccount{}
	if !validID(userID) {
		return out, nil
	}
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	lkey := s.k.linked(userID)
	all, err := s.rdb.HGetAll(ctx, lkey).Result()
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	for f, data := range all {
		r, err := decode[linkedRecord](op, lkey, data)
		if err != nil {
			return nil, err
		}
		if c, id, ok := parseLinkedField(f); !ok || c != r.Connector || id != r.UserIdentifier {
			return nil, corrupt(op, lkey, errors.New("field "+strconv.Quote(f)+" holds another account"))
		}
		out = append(out, r.account())
	}
	slices.SortFunc(out, func(a, b core.LinkedAccount) int {
		return cmp.Or(a.ConnectedAt.Compare(b.ConnectedAt),
			cmp.Compare(a.Connector, b.Connector), cmp.Compare(a.UserIdentifier, b.UserIdentifier))
	})
	return out, nil
}

// LinkedAccount returns one integration account of a user, or NotFound (also
// for names no account can have).
func (s *Store) LinkedAccount(ctx context.Context, userID, connector, userIdentifier string) (core.LinkedAccount, error) {
	const op = "redisstore.LinkedAccount"
	if !validID(userID) || !validLinked(connector, userIdentifier) {
		return core.LinkedAccount{}, linkedNotFound(op, userID, connector, userIdentifier)
	}
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	lkey := s.k.linked(userID)
	data, err := s.rdb.HGet(ctx, lkey, linkedField(connector, userIdentifier)).Result()
	if errors.Is(err, redis.Nil) {
		return core.LinkedAccount{}, linkedNotFound(op, userID, connector, userIdentifier)
	}
	if err != nil {
		return core.LinkedAccount{}, fail(ctx, op, err)
	}
	r, err := decode[linkedRecord](op, lkey, data)
	if err != nil {
		return core.LinkedAccount{}, err
	}
	return r.account(), nil
}

// DeleteLinkedAccount removes one integration account of a user (one HDEL),
// NotFound if there is none.
func (s *Store) DeleteLinkedAccount(ctx context.Context, userID, connector, userIdentifier string) error {
	const op = "redisstore.DeleteLinkedAccount"
	if !validID(userID) || !validLinked(connector, userIdentifier) {
		return linkedNotFound(op, userID, connector, userIdentifier)
	}
	ctx, cancel := s.bounds.writing(ctx)
	defer cancel()
	n, err := s.rdb.HDel(ctx, s.k.linked(userID), linkedField(connector, userIdentifier)).Result()
	if err != nil {
		return fail(ctx, op, err)
	}
	if n == 0 {
		return linkedNotFound(op, userID, connector, userIdentifier)
	}
	return nil
}
