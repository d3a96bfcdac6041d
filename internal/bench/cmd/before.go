package main

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// beforeCommit is the last commit before the speed work the list row is
// judged against (one outer handler instead of four middlewares, a page's
// items marshalled once, a page's records in one MGET, the user memos): the
// run builds it from the clone's history and measures its page of users on
// the same Redis, in the same rounds, as the list row's reference.
const beforeCommit = "aa72b8eb80d7cb4aec67fee932a8b0adfe6c39f9"

// buildBefore returns the path of a `gatehouse` built at beforeCommit: kept
// in the user's cache folder after the first build, so that only a run on a
// new machine (or after the cache was cleared) pays for it. It fails when the
// clone lacks the commit (a shallow one).
func buildBefore(ctx context.Context, dir string) (string, error) {
	cached := ""
	if c, err := os.UserCacheDir(); err == nil {
		cached = filepath.Join(c, "gatehouse-bench", "gatehouse-"+beforeCommit[:12])
		if fi, err := os.Stat(cached); err == nil && fi.Mode().IsRegular() {
			return cached, nil
		}
	}
	if out, err := exec.CommandContext(ctx, "git", "cat-file", "-e", beforeCommit+"^{commit}").CombinedOutput(); err != nil {
		return "", fmt.Errorf("commit %.12s is not in this clone's history (a shallow clone?): %v %s", beforeCommit, err, strings.TrimSpace(string(out)))
	}
	src := filepath.Join(dir, "before-src")
	if err := os.RemoveAll(src); err != nil {
		return "", err
	}
	archive := exec.CommandContext(ctx, "git", "archive", "--format=tar", beforeCommit)
	tarOut, err := archive.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := archive.Start(); err != nil {
		return "", err
	}
	xerr := extract(tarOut, src)
	io.Copy(io.Discard, tarOut)
	if err := errors.Join(xerr, archive.Wait()); err != nil {
		return "", fmt.Errorf("git archive %.12s: %w", beforeCommit, err)
	}
	bin := filepath.Join(dir, "gatehouse-before")
	// Without -trimpath, as the main build: the two share the compiled
	// dependencies in Go's build cache.
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/gatehouse")
	build.Dir = src
	build.Env = append(os.Environ(), "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build at %.12s: %v\n%s", beforeCommit, err, out)
	}
	if cached != "" { // best effort: a failure only means building again next time
		if err := os.MkdirAll(filepath.Dir(cached), 0o755); err == nil {
			if b, err := os.ReadFile(bin); err == nil {
				tmp := cached + ".tmp" + strconv.Itoa(os.Getpid())
				if os.WriteFile(tmp, b, 0o755) == nil && os.Rename(tmp, cached) != nil {
					os.Remove(tmp)
				}
			}
		}
	}
	return bin, nil
}

// extract writes a tar stream's regular files and folders under dir.
func extract(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(name, filepath.Clean(dir)+string(filepath.Separator)) {
			return fmt.Errorf("%q leaves the folder", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(name, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o755|0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if err = errors.Join(err, f.Close()); err != nil {
				return err
			}
		}
	}
}

// seedUsers creates the list row's users through an admin API, as seed does.
func seedUsers(ctx context.Context, a admin, n int) error {
	return parallel(ctx, n, func(i int) error {
		return a.do(ctx, "POST", "/users", seedUser(i), 200, nil)
	})
}
