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

// LineError is a line Import refused: nothing of it was written.
type LineError struct {
	Line int64  // 1-based
	Kind string // the line's kind, when it could be read
	Err  error
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
	if e.Kind != "" {
		return fmt.Sprintf("line %d (%s): %s", e.Line, e.Kind, msg)
	}
	return fmt.Sprintf("line %d: %s", e.Line, msg)
}

func (e *LineError) Unwrap() error { return e.Err }

// Report is what Import did: lines written (Created) and lines already there
// (Unchanged), by kind, and the lines it refused, in line order.
type Report struct {
	Created, Unchanged Counts
	Bad                []*LineError
}

// Import reads JSON lines as Export writes them and restores each through
// core: a line is validated whole and written whole or not at all; a bad
// line is reported with its number and the import goes on. It is idempotent:
// a line whose data is already there is counted Unchanged. Ids, numbers,
// hashes and sealed secrets are kept as they are. Users are written by
// opt.Workers writers at once; every other line waits for the users before
// it. The error is for what stops the import (reading, the context); refused
// lines are in the report.
func Import(ctx context.Context, svc *core.Service, r io.Reader, opt Options) (Report, error) {
	rep := Report{Created: Counts{}, Unchanged: Counts{}}
	var mu sync.Mutex
	done := func(line int64, kind string, created bool, err error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			rep.Bad = append(rep.Bad, &LineError{Line: line, Kind: kind, Err: err})
		case created:
			rep.Created[kind]++
		default:
			rep.Unchanged[kind]++
		}
	}
	type job struct {
		line int64
		d    core.UserData
	}
	var jobs chan job
	var wg sync.WaitGroup
	start := func() {
		jobs = make(chan job, opt.workers())
		for range opt.workers() {
			wg.Go(func() {
				for j := range jobs {
					created, err := svc.RestoreUser(ctx, j.d)
					done(j.line, KindUser, created, err)
				}
			})
		}
	}
	// drain waits for the users in flight, so a later line of another kind
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

	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<16), MaxLine)
	var n int64
	var err error
	for sc.Scan() {
		n++
		if err = ctx.Err(); err != nil {
			break
		}
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		kind, v, lerr := decodeLine(b)
		if lerr != nil {
			done(n, kind, false, lerr)
			continue
		}
		switch l := v.(type) {
		case headerLine:
		case userLine:
			jobs <- job{n, l.userData()}
		case scopeLine:
			drain()
			created, err := svc.RestoreScope(ctx, core.Scope{Name: l.Name, Reg: l.Reg, CreatedAt: l.CreatedAt})
			done(n, kind, created, err)
		case adminKeyLine:
			drain()
			created, err := svc.RestoreAdminKey(ctx, core.AdminKey{
				ID: l.ID, Name: l.Name, Scope: core.AdminScope(l.Scope), Prefix: l.Prefix, Hash: l.Hash,
				CreatedAt: l.CreatedAt, LastUsedAt: l.LastUsedAt,
			})
			done(n, kind, created, err)
		case clientLine:
			drain()
			var keys []core.ClientKey
			for _, k := range l.Keys {
				keys = append(keys, core.ClientKey{ID: k.ID, ClientID: l.ID, Hash: k.Hash, Preview: k.Preview, CreatedAt: k.CreatedAt})
			}
			created, err := svc.RestoreClient(ctx, core.Client{ID: l.ID, Seq: l.Seq, Name: l.Name, CreatedAt: l.CreatedAt}, keys)
			done(n, kind, created, err)
		}
		if n%1000 == 0 {
			progress()
		}
	}
	close(jobs)
	wg.Wait()
	if err == nil {
		err = sc.Err()
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("line %d: longer than %d bytes", n+1, MaxLine)
		}
	}
	progress()
	mu.Lock()
	defer mu.Unlock()
	slices.SortFunc(rep.Bad, func(a, b *LineError) int { return cmp.Compare(a.Line, b.Line) })
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
		var l scopeLine
		err, v = strict(b, &l), &l
	case KindAdminKey:
		var l adminKeyLine
		err, v = strict(b, &l), &l
	case KindClient:
		var l clientLine
		err, v = strict(b, &l), &l
	case KindUser:
		var l userLine
		err, v = strict(b, &l), &l
	default:
		return env.Kind, nil, core.Errorf(core.Invalid, op, "unknown kind %q", env.Kind)
	}
	if err != nil {
		return env.Kind, nil, err
	}
	switch l := v.(type) { // the pointers back to values
	case *scopeLine:
		v = *l
	case *adminKeyLine:
		v = *l
	case *clientLine:
		v = *l
	case *userLine:
		v = *l
	}
	return env.Kind, v, nil
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
