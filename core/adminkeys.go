package core

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"time"
)

// Admin key shapes.
const (
	adminKeyPrefix  = "gtha_"
	adminKeyBytes   = 32
	adminKeyShown   = len(adminKeyPrefix) + 6 // characters kept as the recognisable prefix
	adminKeyTouchAt = time.Minute             // lastUsedAt is written at most this often
	// BootstrapKeyID is the id under which the GATEHOUSE_ADMIN_KEY key acts.
	BootstrapKeyID = "env"
)

// CreateAdminKey makes a new admin key and returns it with its plain text, shown
// once. Only its SHA-256 is stored. Conflict if the name is taken.
func (s *Service) CreateAdminKey(ctx context.Context, name string, scope AdminScope) (AdminKey, string, error) {
	const op = "core.CreateAdminKey"
	var c checker
	if err := ValidateAppName(name); err != nil {
		c.fail("name", "%s", detailOf(err))
	}
	if scope == "" {
		scope = ScopeAdmin
	}
	if !scope.Valid() {
		c.fail("scope", "must be one of admin, read, publicala, gaio, qloud")
	}
	if err := c.err(op); err != nil {
		return AdminKey{}, "", err
	}
	k, plain := s.newAdminKey(name, scope)
	if err := s.store.CreateAdminKey(ctx, k); err != nil {
		return AdminKey{}, "", err
	}
	return k, plain, nil
}

func (s *Service) newAdminKey(name string, scope AdminScope) (AdminKey, string) {
	plain := NewSecret(adminKeyPrefix, adminKeyBytes)
	return AdminKey{
		ID: NewID(), Name: name, Scope: scope, Prefix: plain[:adminKeyShown],
		Hash: HashSHA256(plain), CreatedAt: s.Now(),
	}, plain
}

// BootstrapAdminKey creates the first admin key when the store holds none and no
// GATEHOUSE_ADMIN_KEY is configured, and returns it in plain text to be shown once;
// "" when nothing was created (another instance won, or keys exist).
func (s *Service) BootstrapAdminKey(ctx context.Context) (string, error) {
	if s.adminKey != "" {
		return "", nil
	}
	k, plain := s.newAdminKey("bootstrap-"+s.Now().Format("20060102T150405Z"), ScopeAdmin)
	ok, err := s.store.CreateFirstAdminKey(ctx, k)
	if err != nil || !ok {
		return "", err
	}
	return plain, nil
}

// AdminKeys lists the admin keys (never their secrets).
func (s *Service) AdminKeys(ctx context.Context) ([]AdminKey, error) { return s.store.AdminKeys(ctx) }

// RevokeAdminKey deletes an admin key by id. A precondition (If-Match) is
// checked on the stored key inside the delete: PreconditionFailed, nothing
// deleted.
func (s *Service) RevokeAdminKey(ctx context.Context, id string, pre ...Precondition) error {
	const op = "core.RevokeAdminKey"
	if id == BootstrapKeyID && s.adminKey != "" {
		return Errorf(Forbidden, op, "the GATEHOUSE_ADMIN_KEY key is configured, not stored: unset the variable")
	}
	return s.store.DeleteAdminKey(ctx, id, checkVersion[AdminKey](precondition(pre), op, "admin key", nil)...)
}

// AuthenticateAdmin returns the admin key matching presented: the configured
// GATEHOUSE_ADMIN_KEY (compared in constant time) or a stored key (looked up by its
// SHA-256, so the lookup leaks nothing of the key). Unauthorized otherwise.
func (s *Service) AuthenticateAdmin(ctx context.Context, presented string) (AdminKey, error) {
	const op = "core.AuthenticateAdmin"
	if presented == "" {
		return AdminKey{}, Errorf(Unauthorized, op, "admin key required")
	}
	sum := sha256.Sum256([]byte(presented)) // compared raw: the bootstrap key needs no hex form
	if s.adminKey != "" && subtle.ConstantTimeCompare(sum[:], s.adminKeySum[:]) == 1 {
		return AdminKey{ID: BootstrapKeyID, Name: "GATEHOUSE_ADMIN_KEY", Scope: ScopeAdmin}, nil
	}
	hash := sha256Form(sum)
	k, err := s.store.AdminKeyByHash(ctx, hash)
	if KindOf(err) == NotFound {
		return AdminKey{}, Errorf(Unauthorized, op, "invalid admin key")
	}
	if err != nil {
		return AdminKey{}, err
	}
	if subtle.ConstantTimeCompare([]byte(k.Hash), []byte(hash)) != 1 {
		return AdminKey{}, Errorf(Unauthorized, op, "invalid admin key")
	}
	if now := s.Now(); now.Sub(k.LastUsedAt) >= adminKeyTouchAt {
		_ = s.store.TouchAdminKey(ctx, k.ID, now) // best effort: a lost touch only delays lastUsedAt
	}
	return k, nil
}
