package backup

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"sync"

	"github.com/gatehouse/gatehouse/core"
)

// Counts tells how many lines of each kind an export wrote or an import read.
type Counts map[string]int64

// Options tune Export and Import.
type Options struct {
	// Sessions: Export writes each user's live login sessions (their hashes);
	// Import restores sessions whenever a line holds them.
	Sessions bool
	// Workers read (Export) or write (Import) that many users at once; 0: 16.
	Workers int
	// Progress, when set, is called now and then with the counts so far, and
	// once at the end.
	Progress func(Counts)
}

func (o Options) workers() int {
	if o.Workers <= 0 {
		return 16
	}
	return o.Workers
}

// pageSize is how many users Export reads per page: memory holds one page.
const pageSize = 500

// Export writes the store's data to w as JSON lines: a header, the scope
// registry, the admin keys, the clients, the groups, then every user with what it owns,
// in Number order. It holds one page of users in memory, whatever the store's
// size. Two exports of the same data are identical byte for byte.
func Export(ctx context.Context, svc *core.Service, w io.Writer, opt Options) (Counts, error) {
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	counts := Counts{}
	put := func(kind string, v any) error {
		counts[kind]++
		return enc.Encode(v)
	}
	if err := put(KindHeader, headerLine{envelope{KindHeader, Version}, formatName, opt.Sessions}); err != nil {
		return counts, err
	}
	delete(counts, KindHeader)
	scopes, err := svc.Scopes(ctx)
	if err != nil {
		return counts, err
	}
	for _, s := range scopes {
		if err := put(KindScope, scopeLine{envelope{KindScope, Version}, s.Name, s.Reg, utc(s.CreatedAt)}); err != nil {
			return counts, err
		}
	}
	keys, err := svc.AdminKeys(ctx)
	if err != nil {
		return counts, err
	}
	for _, k := range keys {
		if err := put(KindAdminKey, adminKeyLine{
			envelope{KindAdminKey, Version}, k.ID, k.Name, string(k.Scope), k.Prefix, k.Hash, utc(k.CreatedAt), utc(k.LastUsedAt),
		}); err != nil {
			return counts, err
		}
	}
	for start := int64(0); ; {
		page, err := svc.ListClients(ctx, core.ListOptions{Start: start, Count: pageSize})
		if err != nil {
			return counts, err
		}
		for _, c := range page.Items {
			_, ks, err := svc.GetClient(ctx, c.ID)
			if err != nil {
				return counts, err
			}
			l := clientLine{envelope: envelope{KindClient, Version}, ID: c.ID, Seq: c.Seq, Name: c.Name, CreatedAt: utc(c.CreatedAt)}
			for _, k := range ks {
				l.Keys = append(l.Keys, clientKey{k.ID, k.Hash, k.Preview, utc(k.CreatedAt)})
			}
			if err := put(KindClient, l); err != nil {
				return counts, err
			}
		}
		if start = page.NextKey; start == 0 {
			break
		}
	}
	for start := int64(0); ; {
		page, err := svc.ListGroups(ctx, core.ListOptions{Start: start, Count: pageSize})
		if err != nil {
			return counts, err
		}
		for _, g := range page.Items {
			if err := put(KindGroup, groupLine{envelope{KindGroup, Version}, g.ID, g.Number, g.Name, g.Tags, utc(g.CreatedAt), utc(g.UpdatedAt)}); err != nil {
				return counts, err
			}
		}
		if start = page.NextKey; start == 0 {
			break
		}
	}
	for start := int64(0); ; {
		var page core.Page[core.User]
		err := Retry(ctx, func() (err error) {
			page, err = svc.ListUsers(ctx, core.ListOptions{Start: start, Count: pageSize})
			return err
		})
		if err != nil {
			return counts, err
		}
		data, err := readUsers(ctx, svc, page.Items, opt)
		if err != nil {
			return counts, err
		}
		for _, d := range data {
			if err := put(KindUser, toUserLine(d)); err != nil {
				return counts, err
			}
		}
		if opt.Progress != nil {
			opt.Progress(counts)
		}
		if start = page.NextKey; start == 0 {
			break
		}
	}
	if opt.Progress != nil {
		opt.Progress(counts)
	}
	return counts, bw.Flush()
}

// readUsers reads the data of users with opt.Workers readers, in order. A
// user deleted since its page was listed is left out.
func readUsers(ctx context.Context, svc *core.Service, users []core.User, opt Options) ([]core.UserData, error) {
	out := make([]core.UserData, len(users))
	found := make([]bool, len(users))
	errs := make([]error, len(users))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(opt.workers(), len(users)) {
		wg.Go(func() {
			for i := range next {
				var d core.UserData
				err := Retry(ctx, func() (err error) {
					d, err = svc.ReadUserData(ctx, users[i].ID, opt.Sessions)
					return err
				})
				switch core.KindOf(err) {
				case core.Other:
					out[i], found[i] = d, true
				case core.NotFound:
				default:
					errs[i] = err
				}
			}
		})
	}
	for i := range users {
		next <- i
	}
	close(next)
	wg.Wait()
	kept := out[:0]
	for i := range users {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if found[i] {
			kept = append(kept, out[i])
		}
	}
	return kept, nil
}
