package core

import (
	"context"
	"slices"
	"strconv"
)

// CreateScopes registers scopes, all or none (Express Gateway's POST /scopes):
// Invalid naming each bad name, Conflict naming those already registered.
func (s *Service) CreateScopes(ctx context.Context, names []string) ([]Scope, error) {
	const op = "core.CreateScopes"
	var c checker
	if len(names) == 0 {
		c.fail("scopes", "must list at least one scope")
	}
	now := s.Now()
	var scopes []Scope
	for i, name := range names {
		if err := ValidateScopeName(name); err != nil {
			c.fail("scopes."+strconv.Itoa(i), "%s", detailOf(err))
			continue
		}
		if !slices.ContainsFunc(scopes, func(sc Scope) bool { return sc.Name == name }) {
			scopes = append(scopes, Scope{Name: name, Reg: NewSecret("", 9), CreatedAt: now})
		}
	}
	if err := c.err(op); err != nil {
		return nil, err
	}
	if err := s.store.CreateScopes(ctx, scopes); err != nil {
		return nil, err
	}
	return scopes, nil
}

// CreateScope registers one scope (PUT /scopes/{name}): Conflict if it exists.
// A precondition (If-Match) can never hold for a create: PreconditionFailed
// when the scope does not exist, Conflict when it does; nothing is written.
func (s *Service) CreateScope(ctx context.Context, name string, pre ...Precondition) (Scope, error) {
	if err := ValidateScopeName(name); err != nil {
		return Scope{}, err
	}
	if p := precondition(pre); !p.IsZero() {
		_, err := s.GetScope(ctx, name)
		if KindOf(err) == NotFound {
			return Scope{}, Errorf(PreconditionFailed, "core.CreateScope", "scope %q does not exist: If-Match cannot hold", name)
		}
		if err != nil {
			return Scope{}, err
		}
		return Scope{}, Errorf(Conflict, "core.CreateScope", "scopes already registered: %s", name)
	}
	scopes, err := s.CreateScopes(ctx, []string{name})
	if err != nil {
		return Scope{}, err
	}
	return scopes[0], nil
}

// Scopes returns the registry, sorted by name.
func (s *Service) Scopes(ctx context.Context) ([]Scope, error) { return s.store.Scopes(ctx) }

// GetScope returns a registered scope, or NotFound.
func (s *Service) GetScope(ctx context.Context, name string) (Scope, error) {
	scopes, err := s.store.Scopes(ctx)
	if err != nil {
		return Scope{}, err
	}
	for _, sc := range scopes {
		if sc.Name == name {
			return sc, nil
		}
	}
	return Scope{}, Errorf(NotFound, "core.GetScope", "scope %q not found", name)
}

// DeleteScope unregisters a scope; it stops being effective on every credential at
// once, without rewriting them (they are filtered on read; doctor tidies). A
// precondition is checked on the registered scope inside the delete.
func (s *Service) DeleteScope(ctx context.Context, name string, pre ...Precondition) error {
	return s.store.DeleteScope(ctx, name, checkVersion[Scope](precondition(pre), "core.DeleteScope", "scope", nil)...)
}

// detailOf returns the client message of a validation error, preferring its first
// field's detail.
func detailOf(err error) string {
	if fs := FieldsOf(err); len(fs) > 0 {
		return fs[0].Detail
	}
	if m := MessageOf(err); m != "" {
		return m
	}
	return "is invalid"
}
