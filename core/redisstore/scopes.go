package redisstore

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/core"
	"github.com/redis/go-redis/v9"
)

// createScopesScript registers ARGV as name, record pairs in the hash KEYS[1], all
// or none: it answers the names already registered, or nothing after writing.
var createScopesScript = redis.NewScript(`
local taken = {}
for i = 1, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then taken[#taken + 1] = ARGV[i] end
end
if #taken > 0 then return taken end
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return {}`)

// CreateScopes registers scopes, all or none; Conflict names those already
// registered. An empty Reg is filled in (in the caller's slice) with a new id.
func (s *Store) CreateScopes(ctx context.Context, scopes []core.Scope) (err error) {
	const op = "redisstore.CreateScopes"
	defer s.replicated(ctx, op, &err)
	defer func() { s.changed(ctx, "", err) }()
	ctx, cancel := s.bounds.writing(ctx)
	defer cancel()
	if len(scopes) == 0 {
		return nil
	}
	args := make([]any, 0, 2*len(scopes))
	for i := range scopes {
		if scopes[i].Name == "" {
			return core.Errorf(core.Invalid, op, "a scope needs a name")
		}
		if scopes[i].Reg == "" {
			scopes[i].Reg = core.NewID()
		}
		data, err := encode(op, scopeRecord{Reg: scopes[i].Reg, CreatedAt: scopes[i].CreatedAt.UTC()})
		if err != nil {
			return err
		}
		args = append(args, scopes[i].Name, data)
	}
	taken, err := createScopesScript.Run(ctx, s.rdb, []string{s.k.scopes()}, args...).StringSlice()
	if err != nil {
		return fail(ctx, op, err)
	}
	if len(taken) > 0 {
		slices.Sort(taken)
		taken = slices.Compact(taken)
		return core.Errorf(core.Conflict, op, "scopes already registered: %s", strings.Join(taken, ", "))
	}
	return nil
}

// Scopes returns the registry sorted by name.
func (s *Store) Scopes(ctx context.Context) ([]core.Scope, error) {
	const op = "redisstore.Scopes"
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	reg, err := s.registry(ctx, op)
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	out := make([]core.Scope, 0, len(reg))
	for _, sc := range reg {
		out = append(out, sc)
	}
	slices.SortFunc(out, func(a, b core.Scope) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// registry reads the scope registry by name.
func (s *Store) registry(ctx context.Context, op string) (map[string]core.Scope, error) {
	m, err := s.rdb.HGetAll(ctx, s.k.scopes()).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]core.Scope, len(m))
	for name, data := range m {
		r, err := decode[scopeRecord](op, s.k.scopes()+" "+name, data)
		if err != nil {
			return nil, err
		}
		out[name] = core.Scope{Name: name, Reg: r.Reg, CreatedAt: r.CreatedAt}
	}
	return out, nil
}

// DeleteScope unregisters a scope; NotFound if it is not registered. Grants of it
// stay on credentials, no longer effective, until Doctor removes them. With
// checks, the registry is watched between their read and the delete.
func (s *Store) DeleteScope(ctx context.Context, name string, check ...func(core.Scope) error) (err error) {
	const op = "redisstore.DeleteScope"
	defer s.replicated(ctx, op, &err)
	defer func() { s.changed(ctx, "", err) }()
	notFound := core.Errorf(core.NotFound, op, "scope %q not found", name)
	if len(check) > 0 {
		key := s.k.scopes()
		err := s.watch(ctx, op, "scope "+name, func(ctx context.Context, tx *redis.Tx) error {
			data, err := tx.HGet(ctx, key, name).Result()
			if errors.Is(err, redis.Nil) {
				return notFound
			}
			if err != nil {
				return err
			}
			r, err := decode[scopeRecord](op, key+" "+name, data)
			if err != nil {
				return err
			}
			if err := runChecks(core.Scope{Name: name, Reg: r.Reg, CreatedAt: r.CreatedAt}, check); err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HDel(ctx, key, name)
				return nil
			})
			return err
		}, key)
		return fail(ctx, op, err)
	}
	ctx, cancel := s.bounds.writing(ctx)
	defer cancel()
	n, err := s.rdb.HDel(ctx, s.k.scopes(), name).Result()
	if err != nil {
		return fail(ctx, op, err)
	}
	if n == 0 {
		return notFound
	}
	return nil
}
