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
	ID             string    `json:"id,omitempty"` // came later: older records have none
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
		ID: a.ID, Connector: a.Connector, UserIdentifier: a.UserIdentifier, DisplayName: a.DisplayName,
		Scopes: slices.Clone(a.Scopes), Tokens: a.Tokens, ExpiresAt: utcOrZero(a.ExpiresAt),
		ConnectedAt: a.ConnectedAt.UTC(), UpdatedAt: a.UpdatedAt.UTC(),
	}
}

func (r linkedRecord) account() core.LinkedAccount {
	return core.LinkedAccount{
		ID: r.ID, Connector: r.Connector, UserIdentifier: r.UserIdentifier, DisplayName: r.DisplayName,
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

// linkedHash is a user's P u:{uid}:linked hash, read whole: its accounts by
// field and each connector's selected userIdentifier as stored.
type linkedHash struct {
	accounts map[string]linkedRecord // by linkedField
	selected map[string]string       // connector → userIdentifier
}

// parseLinkedHash reads the fields of a P u:{uid}:linked hash; a field of
// neither shape, or an account under another account's field, is corrupt.
func parseLinkedHash(op, lkey string, all map[string]string) (linkedHash, error) {
	h := linkedHash{accounts: map[string]linkedRecord{}, selected: map[string]string{}}
	for f, data := range all {
		if c, ok := parseSelectedField(f); ok {
			h.selected[c] = data
			continue
		}
		r, err := decode[linkedRecord](op, lkey, data)
		if err != nil {
			return linkedHash{}, err
		}
		if c, id, ok := parseLinkedField(f); !ok || c != r.Connector || id != r.UserIdentifier {
			return linkedHash{}, corrupt(op, lkey, errors.New("field "+strconv.Quote(f)+" holds another account"))
		}
		h.accounts[f] = r
	}
	return h, nil
}

// selection returns the userIdentifier of the connector's selected account:
// the stored one while that account exists. A connector whose accounts were
// linked before selections were stored has none stored; its newest account
// (the one a delete would select) stands in, so every connector with accounts
// reads as having exactly one selected.
func (h linkedHash) selection(connector string) string {
	if id, ok := h.selected[connector]; ok {
		if _, ok := h.accounts[linkedField(connector, id)]; ok {
			return id
		}
	}
	return h.newest(connector, "")
}

// newest returns the userIdentifier of the connector's newest account other
// than except (greatest ConnectedAt, then greatest userIdentifier), "" if none.
func (h linkedHash) newest(connector, except string) string {
	var best *linkedRecord
	for _, r := range h.accounts {
		if r.Connector != connector || r.UserIdentifier == except {
			continue
		}
		if best == nil || cmp.Or(r.ConnectedAt.Compare(best.ConnectedAt), cmp.Compare(r.UserIdentifier, best.UserIdentifier)) > 0 {
			best = &r
		}
	}
	if best == nil {
		return ""
	}
	return best.UserIdentifier
}

// account returns the account r with Selected filled.
func (h linkedHash) account(r linkedRecord) core.LinkedAccount {
	a := r.account()
	a.Selected = h.selection(r.Connector) == r.UserIdentifier
	return a
}

// readLinked reads a user's linked-account hash whole (through tx when set).
func (s *Store) readLinked(ctx context.Context, c redis.Cmdable, op, userID string) (linkedHash, error) {
	lkey := s.k.linked(userID)
	all, err := c.HGetAll(ctx, lkey).Result()
	if err != nil {
		return linkedHash{}, err
	}
	return parseLinkedHash(op, lkey, all)
}

// PutLinkedAccount stores a user's integration account in the user's slot,
// replacing the one with the same Connector and UserIdentifier but keeping its
// ID and ConnectedAt (a new account's ID is a.ID, else a new UUID). A new
// account's ConnectedAt is a.ConnectedAt, else the store's clock; UpdatedAt is
// a.UpdatedAt, else the clock. The account becomes its connector's selected
// one when the connector has none (or the selected one is gone), in the same
// MULTI. It watches the user record, so a DeleteUser that commits first makes
// it answer NotFound, and one that commits after it deletes the account with
// the rest of the slot.
func (s *Store) PutLinkedAccount(ctx context.Context, userID string, a core.LinkedAccount) (_ core.LinkedAccount, err error) {
	const op = "redisstore.PutLinkedAccount"
	defer s.replicated(ctx, op, &err)
	switch {
	case a.Connector == "" || strings.Contains(a.Connector, ":"):
		return core.LinkedAccount{}, core.Errorf(core.Invalid, op, "connector %q is not valid: it must be non-empty and free of ':'", a.Connector)
	case a.UserIdentifier == "":
		return core.LinkedAccount{}, core.Errorf(core.Invalid, op, "userIdentifier is empty")
	case !validID(userID):
		return core.LinkedAccount{}, core.Errorf(core.NotFound, op, "user %q not found", userID)
	}
	ukey, lkey := s.k.user(userID), s.k.linked(userID)
	field, sel := linkedField(a.Connector, a.UserIdentifier), selectedField(a.Connector)
	var stored core.LinkedAccount
	err = s.watch(ctx, op, "user "+strconv.Quote(userID), func(ctx context.Context, tx *redis.Tx) error {
		var user *redis.IntCmd
		var all *redis.MapStringStringCmd
		if _, err := tx.Pipelined(ctx, func(p redis.Pipeliner) error {
			user = p.Exists(ctx, ukey)
			all = p.HGetAll(ctx, lkey)
			return nil
		}); err != nil {
			return err
		}
		if user.Val() == 0 {
			return core.Errorf(core.NotFound, op, "user %q not found", userID)
		}
		h, err := parseLinkedHash(op, lkey, all.Val())
		if err != nil {
			return err
		}
		r := toLinkedRecord(a)
		if prev, ok := h.accounts[field]; ok {
			r.ConnectedAt = prev.ConnectedAt
			if prev.ID != "" {
				r.ID = prev.ID
			}
		}
		if r.ID == "" {
			r.ID = core.NewID()
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
		current, ok := h.selected[a.Connector]
		if ok {
			_, ok = h.accounts[linkedField(a.Connector, current)]
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, lkey, field, data)
			if !ok {
				p.HSet(ctx, lkey, sel, a.UserIdentifier)
			}
			return nil
		})
		stored = r.account()
		stored.Selected = !ok || current == a.UserIdentifier
		return err
	}, ukey, lkey)
	if err != nil {
		return core.LinkedAccount{}, fail(ctx, op, err)
	}
	return stored, nil
}

// LinkedAccounts lists a user's integration accounts, oldest first (by
// ConnectedAt, then connector and identifier), with Selected filled; an
// unknown user has none.
func (s *Store) LinkedAccounts(ctx context.Context, userID string) ([]core.LinkedAccount, error) {
	const op = "redisstore.LinkedAccounts"
	out := []core.LinkedAccount{}
	if !validID(userID) {
		return out, nil
	}
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	h, err := s.readLinked(ctx, s.rdb, op, userID)
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	for _, r := range h.accounts {
		out = append(out, h.account(r))
	}
	slices.SortFunc(out, func(a, b core.LinkedAccount) int {
		return cmp.Or(a.ConnectedAt.Compare(b.ConnectedAt),
			cmp.Compare(a.Connector, b.Connector), cmp.Compare(a.UserIdentifier, b.UserIdentifier))
	})
	return out, nil
}

// LinkedAccount returns one integration account of a user, Selected filled,
// or NotFound (also for names no account can have).
func (s *Store) LinkedAccount(ctx context.Context, userID, connector, userIdentifier string) (core.LinkedAccount, error) {
	const op = "redisstore.LinkedAccount"
	if !validID(userID) || !validLinked(connector, userIdentifier) {
		return core.LinkedAccount{}, linkedNotFound(op, userID, connector, userIdentifier)
	}
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	h, err := s.readLinked(ctx, s.rdb, op, userID)
	if err != nil {
		return core.LinkedAccount{}, fail(ctx, op, err)
	}
	r, ok := h.accounts[linkedField(connector, userIdentifier)]
	if !ok {
		return core.LinkedAccount{}, linkedNotFound(op, userID, connector, userIdentifier)
	}
	return h.account(r), nil
}

// DeleteLinkedAccount removes one integration account of a user, NotFound if
// there is none. When it was its connector's selected account, the newest
// remaining account of that connector (greatest ConnectedAt, then greatest
// userIdentifier) is selected instead, or the selection cleared when none
// remains: one MULTI under WATCH of the user record and the hash.
func (s *Store) DeleteLinkedAccount(ctx context.Context, userID, connector, userIdentifier string) (err error) {
	const op = "redisstore.DeleteLinkedAccount"
	defer s.replicated(ctx, op, &err)
	if !validID(userID) || !validLinked(connector, userIdentifier) {
		return linkedNotFound(op, userID, connector, userIdentifier)
	}
	ukey, lkey := s.k.user(userID), s.k.linked(userID)
	field, sel := linkedField(connector, userIdentifier), selectedField(connector)
	err = s.watch(ctx, op, "user "+strconv.Quote(userID), func(ctx context.Context, tx *redis.Tx) error {
		h, err := s.readLinked(ctx, tx, op, userID)
		if err != nil {
			return err
		}
		if _, ok := h.accounts[field]; !ok {
			return linkedNotFound(op, userID, connector, userIdentifier)
		}
		wasSelected := h.selection(connector) == userIdentifier
		next := h.newest(connector, userIdentifier)
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HDel(ctx, lkey, field)
			switch {
			case next == "":
				p.HDel(ctx, lkey, sel)
			case wasSelected:
				p.HSet(ctx, lkey, sel, next)
			}
			return nil
		})
		return err
	}, ukey, lkey)
	return fail(ctx, op, err)
}

// SelectLinkedAccount makes one account its connector's selected one (the
// others of that connector no longer are): one HSET under WATCH of the user
// record and the hash. NotFound if there is no such account.
func (s *Store) SelectLinkedAccount(ctx context.Context, userID, connector, userIdentifier string) (err error) {
	const op = "redisstore.SelectLinkedAccount"
	defer s.replicated(ctx, op, &err)
	if !validID(userID) || !validLinked(connector, userIdentifier) {
		return linkedNotFound(op, userID, connector, userIdentifier)
	}
	ukey, lkey := s.k.user(userID), s.k.linked(userID)
	field := linkedField(connector, userIdentifier)
	err = s.watch(ctx, op, "user "+strconv.Quote(userID), func(ctx context.Context, tx *redis.Tx) error {
		ok, err := tx.HExists(ctx, lkey, field).Result()
		if err != nil {
			return err
		}
		if !ok {
			return linkedNotFound(op, userID, connector, userIdentifier)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, lkey, selectedField(connector), userIdentifier)
			return nil
		})
		return err
	}, ukey, lkey)
	return fail(ctx, op, err)
}
