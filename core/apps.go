package core

import (
	"context"
	"errors"
	"maps"
	"strings"
)

// CreateApp creates an application from a native admin API body: name (required by
// the default model), userId (the owner's id or username, what `eg apps create -u`
// sends), redirectUri, isActive and the model's properties. id and the timestamps
// are read-only.
func (s *Service) CreateApp(ctx context.Context, in Fields) (App, error) {
	const op = "core.CreateApp"
	now := s.Now()
	a := App{ID: NewID(), IsActive: true, CreatedAt: now, UpdatedAt: now}
	f := cloneFields(in)
	var c checker
	for _, name := range []string{"id", "createdAt", "updatedAt"} {
		c.readOnly(f, name, nil, false)
	}
	if v, ok := c.boolean(f, "isActive"); ok {
		a.IsActive = v
	}
	n := len(c.errs)
	owner, present, null := c.str(f, "userId")
	if (!present || null || owner == "") && len(c.errs) == n {
		c.fail("userId", "is required")
	}
	s.appFields(&c, f, &a, true)
	if err := c.err(op); err != nil {
		return App{}, err
	}
	if owner != "" {
		u, err := s.ResolveUser(ctx, owner)
		switch KindOf(err) {
		case Other:
			a.UserID, a.OwnerActive = u.ID, u.IsActive
		case NotFound:
			c.fail("userId", "user %q not found", owner)
		default:
			return App{}, err
		}
	}
	if err := c.err(op); err != nil {
		return App{}, err
	}
	if err := s.store.CreateApp(ctx, &a); err != nil {
		return App{}, err
	}
	return a, nil
}

// UpdateApp merges a native admin API body into an app, as UpdateUser does for
// users; userId is accepted only when it names the current owner. A
// precondition is checked on the stored app inside the write.
func (s *Service) UpdateApp(ctx context.Context, ref string, in Fields, pre ...Precondition) (App, error) {
	const op = "core.UpdateApp"
	p := precondition(pre)
	cur, err := s.ResolveApp(ctx, ref)
	if err != nil {
		return App{}, err
	}
	var ownerID string // whom the body's userId names, if anyone
	if v, ok := in["userId"].(string); ok {
		if u, err := s.ResolveUser(ctx, v); err == nil {
			ownerID = u.ID
		}
	}
	return s.store.UpdateApp(ctx, cur.ID, func(a *App) error {
		if err := p.check(op, "app", ownerState(*a, cur).Version()); err != nil {
			return err
		}
		f := cloneFields(in)
		var c checker
		c.readOnly(f, "id", a.ID, true)
		c.readOnly(f, "createdAt", a.CreatedAt, true)
		c.readOnly(f, "updatedAt", a.UpdatedAt, true)
		if _, ok := take(f, "userId"); ok && ownerID != a.UserID {
			c.fail("userId", "is read-only: an app keeps its owner")
		}
		if v, ok := f["isActive"]; ok && !sameValue(v, a.IsActive) {
			c.fail("isActive", "cannot be changed by an update: set the app's status instead")
		}
		delete(f, "isActive")
		props := maps.Clone(a.Props)
		if props == nil {
			props = map[string]any{}
		}
		s.appFields(&c, f, a, false)
		for k, v := range f {
			if v == nil {
				delete(props, k)
			} else {
				props[k] = v
			}
		}
		a.Props = props
		if s.models != nil {
			c.model(s.models.Apps, appInstance(a), MaxString(DefaultMaxString))
		}
		if err := c.err(op); err != nil {
			return err
		}
		a.UpdatedAt = s.Now()
		return nil
	})
}

// appFields takes the app's core fields, name and redirectUri, and on create the
// model properties (what is left in f).
func (s *Service) appFields(c *checker, f Fields, a *App, creating bool) {
	n := len(c.errs)
	if name, present, null := c.str(f, "name"); present && !null {
		if err := ValidateAppName(name); err != nil {
			c.addErr("name", err)
		}
		a.Name = name
	} else if len(c.errs) == n && (null || creating) {
		c.fail("name", "is required")
	}
	if r, present, null := c.str(f, "redirectUri"); null {
		a.RedirectURI = ""
	} else if present {
		if !validURI(r) {
			c.fail("redirectUri", "must be an absolute URI of at most %d bytes", maxURILen)
		}
		a.RedirectURI = r
	}
	if creating {
		a.Props = map[string]any(f)
		if s.models != nil {
			s.models.Apps.ApplyDefaults(a.Props)
			c.model(s.models.Apps, appInstance(a), MaxString(DefaultMaxString))
		}
	}
}

// appInstance returns what the app model validates.
func appInstance(a *App) map[string]any {
	m := make(map[string]any, len(a.Props)+2)
	maps.Copy(m, a.Props)
	if a.Name != "" {
		m["name"] = a.Name
	}
	if a.RedirectURI != "" {
		m["redirectUri"] = a.RedirectURI
	}
	return m
}

// ResolveApp finds an app by `{id or name}`: a UUID is tried as an id first, then
// any reference as a name. A name shared by apps of several owners is Conflict,
// naming their ids.
func (s *Service) ResolveApp(ctx context.Context, ref string) (App, error) {
	const op = "core.ResolveApp"
	if IsUUID(ref) {
		a, err := s.store.GetApp(ctx, ref)
		if KindOf(err) != NotFound {
			return a, err
		}
	}
	apps, err := s.store.AppsByName(ctx, ref)
	if err != nil {
		return App{}, err
	}
	switch len(apps) {
	case 0:
		return App{}, Errorf(NotFound, op, "app %s not found", quoteRef(ref))
	case 1:
		return apps[0], nil
	}
	ids := make([]string, len(apps))
	for i, a := range apps {
		ids[i] = a.ID
	}
	return App{}, Errorf(Conflict, op, "app name %q is shared by apps %s: use an id", ref, strings.Join(ids, ", "))
}

// SetAppStatus sets an app's own active flag and reports whether it changed.
// A precondition is checked as UpdateApp does.
func (s *Service) SetAppStatus(ctx context.Context, ref string, active bool, pre ...Precondition) (changed bool, err error) {
	const op = "core.SetAppStatus"
	p := precondition(pre)
	cur, err := s.ResolveApp(ctx, ref)
	if err != nil {
		return false, err
	}
	if cur.IsActive == active {
		return false, p.check(op, "app", cur.Version())
	}
	_, err = s.store.UpdateApp(ctx, cur.ID, func(a *App) error {
		if err := p.check(op, "app", ownerState(*a, cur).Version()); err != nil {
			return err
		}
		if a.IsActive == active {
			return errUnchanged
		}
		a.IsActive = active
		a.UpdatedAt = s.Now()
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return false, nil
	}
	return err == nil, err
}

// DeleteApp deletes an app and its credentials. A precondition is checked on
// the stored app inside the delete.
func (s *Service) DeleteApp(ctx context.Context, ref string, pre ...Precondition) error {
	cur, err := s.ResolveApp(ctx, ref)
	if err != nil {
		return err
	}
	derive := func(a *App) { *a = ownerState(*a, cur) }
	return s.store.DeleteApp(ctx, cur.ID, checkVersion(precondition(pre), "core.DeleteApp", "app", derive)...)
}

// ownerState returns a, as a store's write reads it, with its owner's state as
// read (in cur) just before: what the app's version covers. The app's own
// state is checked atomically with the write; its owner's, which the write
// does not change, as of that read.
func ownerState(a, cur App) App {
	a.OwnerActive = cur.OwnerActive
	return a
}

// ListApps returns one page of apps in creation order; opt.UserID may be a user id
// or username.
func (s *Service) ListApps(ctx context.Context, opt ListOptions) (Page[App], error) {
	if err := checkList("core.ListApps", &opt); err != nil {
		return Page[App]{}, err
	}
	if opt.UserID != "" {
		u, err := s.ResolveUser(ctx, opt.UserID)
		if err != nil {
			return Page[App]{}, err
		}
		opt.UserID = u.ID
	}
	return s.store.ListApps(ctx, opt)
}
