package redisstore

import (
	"context"

	"github.com/gatehouse/gatehouse/core"
)

// Temporary: replaced by the real implementations on branch clients.

func (s *Store) SelectLinkedAccount(ctx context.Context, userID, connector, userIdentifier string) error {
	return core.Errorf(core.NotFound, "stub", "not yet")
}

func (s *Store) CreateClient(ctx context.Context, c *core.Client) error {
	return core.Errorf(core.Unavailable, "stub", "not yet")
}

func (s *Store) GetClient(ctx context.Context, id string) (core.Client, error) {
	return core.Client{}, core.Errorf(core.NotFound, "stub", "not yet")
}

func (s *Store) ListClients(ctx context.Context, opt core.ListOptions) (core.Page[core.Client], error) {
	return core.Page[core.Client]{}, nil
}

func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return core.Errorf(core.NotFound, "stub", "not yet")
}

func (s *Store) CreateClientKey(ctx context.Context, k core.ClientKey) error {
	return core.Errorf(core.Unavailable, "stub", "not yet")
}

func (s *Store) ClientKeys(ctx context.Context, clientID string) ([]core.ClientKey, error) {
	return nil, nil
}

func (s *Store) ClientByKeyHash(ctx context.Context, hash string) (core.Client, core.ClientKey, error) {
	return core.Client{}, core.ClientKey{}, core.Errorf(core.NotFound, "stub", "not yet")
}

func (s *Store) DeleteClientKey(ctx context.Context, clientID, keyID string) error {
	return core.Errorf(core.NotFound, "stub", "not yet")
}
