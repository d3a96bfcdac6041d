package redisstore

import (
	"context"

	"github.com/gatehouse/gatehouse/core"
)

// Temporary: replaced by the real implementations on branch store8.

func (s *Store) AppsByRedirectURI(ctx context.Context, uri string) ([]core.App, error) {
	return nil, nil
}

func (s *Store) PutLinkedAccount(ctx context.Context, userID string, a core.LinkedAccount) (core.LinkedAccount, error) {
	return a, core.Errorf(core.Unavailable, "stub", "not yet")
}

func (s *Store) LinkedAccounts(ctx context.Context, userID string) ([]core.LinkedAccount, error) {
	return nil, nil
}

func (s *Store) LinkedAccount(ctx context.Context, userID, connector, userIdentifier string) (core.LinkedAccount, error) {
	return core.LinkedAccount{}, core.Errorf(core.NotFound, "stub", "not yet")
}

func (s *Store) DeleteLinkedAccount(ctx context.Context, userID, connector, userIdentifier string) error {
	return core.Errorf(core.NotFound, "stub", "not yet")
}
