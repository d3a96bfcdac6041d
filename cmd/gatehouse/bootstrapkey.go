package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"
)

// showBootstrapKey shows a generated admin key exactly once (SPEC §9 "Admin-key
// bootstrap"): as a plain banner when stderr is a terminal, otherwise written to
// cfg.AdminKeyFile (mode 0600, replaced atomically) whose path is logged. The key
// itself never reaches a log record.
func showBootstrapKey(key string, cfg Config, stderr *os.File, log zerolog.Logger) error {
	if key == "" {
		return errors.New("bootstrap admin key: empty key")
	}
	if isTerminal(stderr) {
		log.Info().Msg("created the first admin key; it is shown below, once")
		return writeKeyBanner(stderr, key)
	}
	if cfg.AdminKeyFile == "" {
		return errors.New("bootstrap admin key: no adminKeyFile to write it to (set GATEHOUSE_ADMIN_KEY_FILE)")
	}
	if err := writeKeyFile(cfg.AdminKeyFile, key); err != nil {
		return fmt.Errorf("bootstrap admin key: %w", err)
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

// writeKeyFile writes key to path with mode 0600, creating missing parent folders
// with mode 0700, through a temporary file renamed over path, so a reader never
// sees a partial key and an old key is replaced whole.
func writeKeyFile(path, key string) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".admin-key-*") // created with mode 0600
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
