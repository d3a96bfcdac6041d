package core

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Group is a named set of users that carries permission tags: its members
// hold its tags as theirs (their effective tags).
type Group struct {
	ID        string // UUID
	Number    int64  // positive, assigned at creation, never reused; the groups' paging cursor
	Name      string // unique case-insensitively (GroupNameKey); inner spaces allowed ("Development team")
	Tags      []string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// maxTags bounds the tags of one user or group, and the groups of one user:
// they travel in every /verify answer.
const maxTags = 100

// GroupNameKey is the form group names are unique in: lower-cased.
func GroupNameKey(name string) string { return strings.ToLower(name) }

// ValidateTag checks a permission tag with the rules of ValidateScopeName (no
// whitespace: X-Consumer-Tags separates tags with spaces). The field is "tags".
func ValidateTag(s string) error {
	return validateName("core.ValidateTag", "tags", s, "/,", true)
}

// checkTags validates a list of tags under field and returns it sorted,
// without duplicates.
func checkTags(c *checker, field string, tags []string) []string {
	for i, t := range tags {
		if err := ValidateTag(t); err != nil {
			c.fail(field+"."+strconv.Itoa(i), "%s", detailOf(err))
		}
	}
	if len(tags) > maxTags {
		c.fail(field, "must list at most %d tags", maxTags)
	}
	out := slices.Clone(tags)
	slices.Sort(out)
	return slices.Compact(out)
}

// EffectiveTags returns a user's own tags and those of its groups found in
// groups (a group that is gone gives nothing), sorted, without duplicates.
func EffectiveTags(u User, groups map[string]Group) []string {
	out := slices.Clone(u.Tags)
	for _, gid := range u.Groups {
		if g, ok := groups[gid]; ok {
			out = append(out, g.Tags...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// GroupNames returns the names of a user's groups found in groups, sorted.
func GroupNames(u User, groups map[string]Group) []string {
	out := make([]string, 0, len(u.Groups))
	for _, gid := range u.Groups {
		if g, ok := groups[gid]; ok {
			out = append(out, g.Name)
		}
	}
	slices.Sort(out)
	return out
}

// CreateGroup creates a group: Invalid for a bad name or tag, Conflict when
// another group has the name (case-insensitively).
func (s *Service) CreateGroup(ctx context.Context, name string, tags []string) (Group, error) {
	const op = "core.CreateGroup"
	var c checker
	c.addErr("name", ValidateGroupName(name))
	tags = checkTags(&c, "tags", tags)
	if err := c.err(op); err != nil {
		return Group{}, err
	}
	now := s.Now()
	g := Group{ID: NewID(), Name: name, Tags: tags, CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateGroup(ctx, &g); err != nil {
		return Group{}, err
	}
	return g, nil
}

// ResolveGroup finds a group by `{id, number or name}`: a UUID is an id, a
// positive integer a number, anything else a name (case-insensitively).
func (s *Service) ResolveGroup(ctx context.Context, ref string) (Group, error) {
	const op = "core.ResolveGroup"
	var g Group
	var err error
	switch n, nerr := strconv.ParseInt(ref, 10, 64); {
	case IsUUID(ref):
		g, err = s.store.GetGroup(ctx, strings.ToLower(ref))
	case nerr == nil && n > 0:
		g, err = s.store.GroupByNumber(ctx, n)
	default:
		g, err = s.store.GroupByName(ctx, ref)
	}
	if KindOf(err) == NotFound || KindOf(err) == Invalid {
		return Group{}, Errorf(NotFound, op, "group %s not found", quoteRef(ref))
	}
	return g, err
}

// GroupByNumber returns the group with that number, or NotFound.
func (s *Service) GroupByNumber(ctx context.Context, n int64) (Group, error) {
	return s.store.GroupByNumber(ctx, n)
}

// RenameGroup gives a group a new name: Conflict when another group has it.
func (s *Service) RenameGroup(ctx context.Context, ref, name string) (Group, error) {
	if err := ValidateGroupName(name); err != nil {
		return Group{}, err
	}
	return s.updateGroup(ctx, ref, func(g *Group) error { g.Name = name; return nil })
}

// UpdateGroup renames a group and replaces its tags (a nil name or tags: kept)
// in one write, under a precondition (If-Match) checked inside it.
func (s *Service) UpdateGroup(ctx context.Context, ref string, name *string, tags *[]string, pre ...Precondition) (Group, error) {
	const op = "core.UpdateGroup"
	var c checker
	var ts []string
	if name != nil {
		c.addErr("name", ValidateGroupName(*name))
	}
	if tags != nil {
		ts = checkTags(&c, "tags", *tags)
	}
	if err := c.err(op); err != nil {
		return Group{}, err
	}
	return s.updateGroup(ctx, ref, func(g *Group) error {
		if name != nil {
			g.Name = *name
		}
		if tags != nil {
			g.Tags = ts
		}
		return nil
	}, pre...)
}

// GrantGroupTags adds tags to a group (its members hold them at once). This
// and the tag writes below take a precondition, as UpdateGroup.
func (s *Service) GrantGroupTags(ctx context.Context, ref string, tags []string, pre ...Precondition) (Group, error) {
	return s.editGroupTags(ctx, ref, tags, setGrant, pre)
}

// RevokeGroupTags removes tags from a group; tags it does not hold are ignored.
func (s *Service) RevokeGroupTags(ctx context.Context, ref string, tags []string, pre ...Precondition) (Group, error) {
	return s.editGroupTags(ctx, ref, tags, setRevoke, pre)
}

// SetGroupTags replaces a group's tags.
func (s *Service) SetGroupTags(ctx context.Context, ref string, tags []string, pre ...Precondition) (Group, error) {
	return s.UpdateGroup(ctx, ref, nil, &tags, pre...)
}

func (s *Service) editGroupTags(ctx context.Context, ref string, tags []string, how setOp, pre []Precondition) (Group, error) {
	const op = "core.editGroupTags"
	var c checker
	tags = checkTags(&c, "tags", tags)
	if err := c.err(op); err != nil {
		return Group{}, err
	}
	return s.updateGroup(ctx, ref, func(g *Group) error {
		var tooMany bool
		if g.Tags, tooMany = editSet(g.Tags, tags, how); tooMany {
			return InvalidFields(op, FieldError{Field: "tags", Detail: "a group holds at most " + strconv.Itoa(maxTags) + " tags"})
		}
		return nil
	}, pre...)
}

// setOp is how a write changes a sorted set of tags or group ids.
type setOp int

const (
	setRevoke  setOp = iota // remove the items
	setGrant                // add them
	setReplace              // make them the set (already checked and sorted)
)

// editSet applies how to a sorted set, and reports whether an addition would
// exceed maxTags (the set is then unchanged).
func editSet(set, items []string, how setOp) ([]string, bool) {
	switch how {
	case setReplace:
		return items, false
	case setRevoke:
		return slices.DeleteFunc(slices.Clone(set), func(t string) bool { return slices.Contains(items, t) }), false
	}
	out := append(slices.Clone(set), items...)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > maxTags && len(out) > len(set) {
		return set, true
	}
	return out, false
}

// updateGroup resolves a group and applies edit to it atomically, after
// checking a precondition on the stored group in the same write.
func (s *Service) updateGroup(ctx context.Context, ref string, edit func(*Group) error, pre ...Precondition) (Group, error) {
	p := precondition(pre)
	g, err := s.ResolveGroup(ctx, ref)
	if err != nil {
		return Group{}, err
	}
	return s.store.UpdateGroup(ctx, g.ID, func(g *Group) error {
		if err := p.check("core.updateGroup", "group", g.Version()); err != nil {
			return err
		}
		if err := edit(g); err != nil {
			return err
		}
		g.UpdatedAt = s.Now()
		return nil
	})
}

// DeleteGroup deletes a group; its users stop being members (and stop holding
// its tags) at once. A precondition is checked on the stored group inside the delete.
func (s *Service) DeleteGroup(ctx context.Context, ref string, pre ...Precondition) error {
	g, err := s.ResolveGroup(ctx, ref)
	if err != nil {
		return err
	}
	return s.store.DeleteGroup(ctx, g.ID, checkVersion[Group](precondition(pre), "core.DeleteGroup", "group", nil)...)
}

// ListGroups returns one page of groups in Number order.
func (s *Service) ListGroups(ctx context.Context, opt ListOptions) (Page[Group], error) {
	if err := checkList("core.ListGroups", &opt); err != nil {
		return Page[Group]{}, err
	}
	return s.store.ListGroups(ctx, opt)
}

// Groups returns every group by id (the registry /verify reads too).
func (s *Service) Groups(ctx context.Context) (map[string]Group, error) {
	return s.store.Groups(ctx)
}

// UserGroups returns a user's groups, in name order.
func (s *Service) UserGroups(ctx context.Context, u User) ([]Group, error) {
	reg, err := s.store.Groups(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Group, 0, len(u.Groups))
	for _, gid := range u.Groups {
		if g, ok := reg[gid]; ok {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b Group) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// GrantGroups makes a user a member of groups (refs as ResolveGroup takes
// them); groups it is in already are ignored. NotFound names a group that does
// not exist, and nothing is granted then.
// This and the group and tag writes of a user below take a precondition
// (If-Match), checked on the stored user inside the write.
func (s *Service) GrantGroups(ctx context.Context, userRef string, groupRefs []string, pre ...Precondition) (User, error) {
	return s.editGroups(ctx, userRef, groupRefs, setGrant, pre)
}

// RevokeGroups ends a user's membership of groups; groups it is not in are
// ignored, a group that does not exist is NotFound.
func (s *Service) RevokeGroups(ctx context.Context, userRef string, groupRefs []string, pre ...Precondition) (User, error) {
	return s.editGroups(ctx, userRef, groupRefs, setRevoke, pre)
}

// SetGroups replaces a user's groups.
func (s *Service) SetGroups(ctx context.Context, userRef string, groupRefs []string, pre ...Precondition) (User, error) {
	return s.editGroups(ctx, userRef, groupRefs, setReplace, pre)
}

// groupIDs resolves group refs to sorted, distinct ids.
func (s *Service) groupIDs(ctx context.Context, refs []string) ([]string, error) {
	const op = "core.groupIDs"
	if len(refs) > maxTags {
		return nil, InvalidFields(op, FieldError{Field: "groups", Detail: "must list at most " + strconv.Itoa(maxTags) + " groups"})
	}
	ids := make([]string, 0, len(refs))
	for _, ref := range refs {
		g, err := s.ResolveGroup(ctx, ref)
		if err != nil {
			return nil, err
		}
		ids = append(ids, g.ID)
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

func (s *Service) editGroups(ctx context.Context, userRef string, groupRefs []string, how setOp, pre []Precondition) (User, error) {
	const op = "core.editGroups"
	u, err := s.ResolveUser(ctx, userRef)
	if err != nil {
		return User{}, err
	}
	ids, err := s.groupIDs(ctx, groupRefs)
	if err != nil {
		return User{}, err
	}
	return s.updateUserIf(ctx, u.ID, pre, func(u *User) error {
		var tooMany bool
		if u.Groups, tooMany = editSet(u.Groups, ids, how); tooMany {
			return InvalidFields(op, FieldError{Field: "groups", Detail: "a user is in at most " + strconv.Itoa(maxTags) + " groups"})
		}
		u.UpdatedAt = s.Now()
		return nil
	})
}

// GrantUserTags gives a user permission tags of its own.
func (s *Service) GrantUserTags(ctx context.Context, userRef string, tags []string, pre ...Precondition) (User, error) {
	return s.editUserTags(ctx, userRef, tags, setGrant, pre)
}

// RevokeUserTags removes tags of a user's own; tags it holds only through a
// group stay (revoke them from the group).
func (s *Service) RevokeUserTags(ctx context.Context, userRef string, tags []string, pre ...Precondition) (User, error) {
	return s.editUserTags(ctx, userRef, tags, setRevoke, pre)
}

// SetUserTags replaces a user's own tags.
func (s *Service) SetUserTags(ctx context.Context, userRef string, tags []string, pre ...Precondition) (User, error) {
	return s.editUserTags(ctx, userRef, tags, setReplace, pre)
}

func (s *Service) editUserTags(ctx context.Context, userRef string, tags []string, how setOp, pre []Precondition) (User, error) {
	const op = "core.editUserTags"
	var c checker
	tags = checkTags(&c, "tags", tags)
	if err := c.err(op); err != nil {
		return User{}, err
	}
	u, err := s.ResolveUser(ctx, userRef)
	if err != nil {
		return User{}, err
	}
	return s.updateUserIf(ctx, u.ID, pre, func(u *User) error {
		var tooMany bool
		if u.Tags, tooMany = editSet(u.Tags, tags, how); tooMany {
			return InvalidFields(op, FieldError{Field: "tags", Detail: "a user holds at most " + strconv.Itoa(maxTags) + " tags of its own"})
		}
		u.UpdatedAt = s.Now()
		return nil
	})
}

// updateUserIf applies fn to a user atomically after checking a precondition
// on the stored user in the same write.
func (s *Service) updateUserIf(ctx context.Context, id string, pre []Precondition, fn func(*User) error) (User, error) {
	p := precondition(pre)
	return s.store.UpdateUser(ctx, id, func(u *User) error {
		if err := p.check("core.updateUser", "user", u.Version()); err != nil {
			return err
		}
		return fn(u)
	})
}
