package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/gatehouse/gatehouse/core"
)

// bootstrapAdminKey creates the first admin key when the store holds none and
// no GATEHOUSE_ADMIN_KEY is set, and shows it once (showBootstrapKey). When it
// cannot be shown (the key file cannot be written), the key is
// revoked again before the start fails: a key nobody holds would lock the
// operator out, and the next start can make one again.
func bootstrapAdminKey(ctx context.Context, svc *core.Service, cfg Config, stderr *os.File, log zerolog.Logger) error {
	key, err := svc.BootstrapAdminKey(ctx)
	if err != nil {
		return fmt.Errorf("bootstrap admin key: %w", err)
	}
	if key == "" {
		return nil
	}
	if err := showBootstrapKey(key, cfg, stderr, log); err != nil {
		if rerr := revokeKey(ctx, svc, key); rerr != nil {
			return fmt.Errorf("%w; and the admin key just created could not be removed (%v): start with GATEHOUSE_ADMIN_KEY set to manage admin keys", err, rerr)
		}
		return err
	}
	return nil
}

// revokeKey deletes the stored admin key whose plain text is key.
func revokeKey(ctx context.Context, svc *core.Service, key string) error {
	k, err := svc.AuthenticateAdmin(ctx, key)
	if err != nil {
		return err
	}
	return svc.RevokeAdminKey(ctx, k.ID)
}

// showBootstrapKey shows a generated admin key exactly once: as a plain banner
// when stderr is a terminal, otherwise written to cfg.AdminKeyFile (mode 0600)
// whose path is logged. The key itself never reaches a log record.
func showBootstrapKey(key string, cfg Config, stderr *os.File, log zerolog.Logger) error {
	if isTerminal(stderr) {
		log.Info().Msg("created the first admin key; it is shown below, once")
		return writeKeyBanner(stderr, key)
	}
	if cfg.AdminKeyFile == "" {
		return errors.New("bootstrap admin key: no adminKeyFile to write it to (set GATEHOUSE_ADMIN_KEY_FILE)")
	}
	kept, err := writeKeyFile(cfg.AdminKeyFile, key)
	if err != nil {
		return fmt.Errorf("bootstrap admin key: %w", err)
	}
	if kept != "" {
		// The store held no admin key, so the old file's key does not open
		// this store; it may still open another one: it is kept, not destroyed.
		log.Warn().Str("path", cfg.AdminKeyFile).Str("kept", kept).
			Msg("the admin key file held an earlier key; it was moved aside, not deleted")
	}
	log.Info().Str("path", cfg.AdminKeyFile).
		Msg("created the first admin key and wrote it to this file (mode 0600); it is not logged")
	return nil
}

// writeKeyBanner prints the key and how to use it, as plain text for a human.
func writeKeyBanner(w io.Writer, key string) error {
	rule := strings.Repeat("=", 72)
	_, err := fmt.Fprintf(w, "\n%s\n"+
		"  Gatehouse created an admin key. It is shown only this once:\n\n"+
		"      %s\n\n"+
		"  Use it with the CLI and the admin API (header x-api-key):\n"+
		"      export GATEHOUSE_ADMIN_KEY=%s\n"+
		"%s\n\n", rule, key, key, rule)
	return err
}

// writeKeyFile writes key to path with mode 0600, creating missing parent
// folders with mode 0700. The key goes to a temporary file first, then is
// linked to path, so a reader never sees a partial key. A file already at path
// is never destroyed: it is renamed to path.<UTC time> first, and that name is
// returned ("" when there was none).
func writeKeyFile(path, key string) (kept string, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, ".admin-key-*") // created with mode 0600
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name()) // the link, when made, keeps the key
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return "", err
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	for range 3 { // another instance may write the file between the rename and the link
		err = os.Link(f.Name(), path)
		if !errors.Is(err, fs.ErrExist) {
			return kept, err
		}
		kept = path + "." + time.Now().UTC().Format("20060102T150405.000000000Z")
		if err := os.Rename(path, kept); err != nil {
			return "", err
		}
	}
	return kept, err
}
