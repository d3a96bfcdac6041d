package backup

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/gatehouse/gatehouse/core"
)

// MaxLine is the longest line Import reads (a user with many credentials).
const MaxLine = 64 << 20

// LineError is a line (or, from another system, a record) Import refused:
// nothing of it was written.
type LineError struct {
	Line  int64  // 1-based; 0 when Where names the record
	Where string // the record in another system ("EG-user:<id>"), when not a line
	Kind  string // the line's kind, when it could be read
	Err   error
}

func (e *LineError) Error() string {
	var parts []string
	for _, f := range core.FieldsOf(e.Err) {
		parts = append(parts, f.Field+": "+f.Detail)
	}
	if len(parts) == 0 {
		parts = append(parts, core.MessageOf(e.Err))
	}
	if parts[0] == "" {
		parts[0] = e.Err.Error()
	}
	msg := strings.Join(parts, "; ")
	where := e.Where
	if where == "" {
		where = fmt.Sprintf("line %d", e.Line)
	}
	if e.Kind != "" {
		return fmt.Sprintf("%s (%s): %s", where, e.Kind, msg)
	}
	return fmt.Sprintf("%s: %s", where, msg)
}

func (e *LineError) Unwrap() error { return e.Err }

// Report is what Import did: lines written (Created) and lines already there
// (Unchanged), by kind, and the lines it refused, in line order.
type Report struct {
	Created, Unchanged Counts
	Bad                []*LineError
}

// Item is one thing Restore writes: exactly one of Scope, AdminKey, Client
// (with ClientKeys), Group and User, or Err for a record that could not be read
// (reported, nothing written).
type Item struct {
	Line       int64  // its line, or
	Where      string // the record it comes from
	Kind       string
	Scope      *core.Scope
	AdminKey   *core.AdminKey
	Client     *core.Client
	ClientKeys []core.ClientKey
	Group      *core.Group
	User       *core.UserData
	Err        error
}

// Import reads JSON lines as Export writes them and restores each through
// core (Restore). The error is for what stops the import (reading, the
// context); refused lines are in the report.
func Import(ctx context.Context, svc *core.Service, r io.Reader, opt Options) (Report, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<16), MaxLine)
	var n int64
	rep, err := Restore(ctx, svc, func() (Item, bool, error) {
		for sc.Scan() {
			n++
			b := bytes.TrimSpace(sc.Bytes())
			if len(b) == 0 {
				continue
			}
			kind, v, err := decodeLine(b)
			it := Item{Line: n, Kind: kind, Err: err}
			switch l := v.(type) {
			case headerLine:
				continue
			case scopeLine:
				it.Scope = &core.Scope{Name: l.Name, Reg: l.Reg, CreatedAt: l.CreatedAt}
			case adminKeyLine:
				it.AdminKey = &core.AdminKey{
					ID: l.ID, Name: l.Name, Scope: core.AdminScope(l.Scope), Prefix: l.Prefix, Hash: l.Hash,
					CreatedAt: l.CreatedAt, LastUsedAt: l.LastUsedAt,
				}
			case clientLine:
				it.Client = &core.Client{ID: l.ID, Seq: l.Seq, Name: l.Name, CreatedAt: l.CreatedAt}
				for _, k := range l.Keys {
					it.ClientKeys = append(it.ClientKeys, core.ClientKey{ID: k.ID, ClientID: l.ID, Hash: k.Hash, Preview: k.Preview, CreatedAt: k.CreatedAt})
				}
			case groupLine:
				it.Group = &core.Group{ID: l.ID, Number: l.Number, Name: l.Name, Tags: l.Tags, CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt}
			case userLine:
				d := l.userData()
				it.User = &d
			}
			return it, true, nil
		}
		err := sc.Err()
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("line %d: longer than %d bytes", n+1, MaxLine)
		}
		return Item{}, false, err
	}, opt)
	return rep, err
}

// Restore writes the items next returns (until it reports none, or an error
// that stops the import) through core: each is validated whole and written
// whole or not at all; a refused one is reported and the restore goes on.
// It is idempotent: an item already there is counted Unchanged. Users are
// written by opt.Workers writers at once; every other item waits for the
// users before it (scopes, say, come before the users whose credentials
// hold them). A write Redis did not answer in time is tried again (Retry).
func Restore(ctx context.Context, svc *core.Service, next func() (Item, bool, error), opt Options) (Report, error) {
	rep := Report{Created: Counts{}, Unchanged: Counts{}}
	var mu sync.Mutex
	done := func(it Item, created bool, err error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			rep.Bad = append(rep.Bad, &LineError{Line: it.Line, Where: it.Where, Kind: it.Kind, Err: err})
		case created:
			rep.Created[it.Kind]++
		default:
			rep.Unchanged[it.Kind]++
		}
	}
	var jobs chan Item
	var wg sync.WaitGroup
	start := func() {
		jobs = make(chan Item, opt.workers())
		for range opt.workers() {
			wg.Go(func() {
				for it := range jobs {
					var created bool
					err := Retry(ctx, func() (err error) {
						created, err = svc.RestoreUser(ctx, *it.User)
						return err
					})
					done(it, created, err)
				}
			})
		}
	}
	// drain waits for the users in flight, so a later item of another kind
	// sees them.
	drain := func() {
		close(jobs)
		wg.Wait()
		start()
	}
	start()
	progress := func() {
		if opt.Progress == nil {
			return
		}
		mu.Lock()
		c := Counts{}
		for k, n := range rep.Created {
			c[k] += n
		}
		for k, n := range rep.Unchanged {
			c[k] += n
		}
		mu.Unlock()
		opt.Progress(c)
	}
	var err error
	for count := 1; ; count++ {
		if err = ctx.Err(); err != nil {
			break
		}
		it, ok, nerr := next()
		if !ok || nerr != nil {
			err = nerr
			break
		}
		var created bool
		var ierr error
		switch {
		case it.Err != nil:
			done(it, false, it.Err)
		case it.User != nil:
			jobs <- it
		case it.Scope != nil:
			drain()
			ierr = Retry(ctx, func() (err error) { created, err = svc.RestoreScope(ctx, *it.Scope); return err })
			done(it, created, ierr)
		case it.AdminKey != nil:
			drain()
			ierr = Retry(ctx, func() (err error) { created, err = svc.RestoreAdminKey(ctx, *it.AdminKey); return err })
			done(it, created, ierr)
		case it.Client != nil:
			drain()
			ierr = Retry(ctx, func() (err error) { created, err = svc.RestoreClient(ctx, *it.Client, it.ClientKeys); return err })
			done(it, created, ierr)
		case it.Group != nil:
			drain()
			ierr = Retry(ctx, func() (err error) { created, err = svc.RestoreGroup(ctx, *it.Group); return err })
			done(it, created, ierr)
		}
		if count%1000 == 0 {
			progress()
		}
	}
	close(jobs)
	wg.Wait()
	progress()
	mu.Lock()
	defer mu.Unlock()
	slices.SortFunc(rep.Bad, func(a, b *LineError) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Where, b.Where))
	})
	return rep, err
}

// decodeLine reads one line: its kind, then the whole line into that kind's
// form, refusing unknown fields, other versions and trailing data.
func decodeLine(b []byte) (string, any, error) {
	const op = "backup.Import"
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return "", nil, core.Errorf(core.Malformed, op, "not a JSON object: %s", jsonProblem(err))
	}
	if env.V != Version {
		return env.Kind, nil, core.Errorf(core.Invalid, op, "format version %d, want %d", env.V, Version)
	}
	var v any
	var err error
	switch env.Kind {
	case KindHeader:
		var l headerLine
		if err = strict(b, &l); err == nil && l.Format != formatName {
			err = core.Errorf(core.Invalid, op, "format %q, want %q", l.Format, formatName)
		}
		v = l
	case KindScope:
		v, err = strictAs[scopeLine](b)
	case KindAdminKey:
		v, err = strictAs[adminKeyLine](b)
	case KindClient:
		v, err = strictAs[clientLine](b)
	case KindGroup:
		v, err = strictAs[groupLine](b)
	case KindUser:
		v, err = strictAs[userLine](b)
	default:
		return env.Kind, nil, core.Errorf(core.Invalid, op, "unknown kind %q", env.Kind)
	}
	if err != nil {
		return env.Kind, nil, err
	}
	return env.Kind, v, nil
}

// strictAs decodes b as a T (see strict), returned by value.
func strictAs[T any](b []byte) (any, error) {
	var l T
	err := strict(b, &l)
	return l, err
}

// strict decodes b into v, refusing unknown fields and trailing data.
func strict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return core.Errorf(core.Invalid, "backup.Import", "%s", jsonProblem(err))
	}
	if dec.More() {
		return core.Errorf(core.Invalid, "backup.Import", "data after the JSON object")
	}
	return nil
}

// jsonProblem describes a decoding error without quoting the line (which may
// hold a hash).
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q must be %s", te.Field, te.Type)
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "json: unknown field ") {
		return "unknown field " + strings.TrimPrefix(msg, "json: unknown field ")
	}
	return msg
}
