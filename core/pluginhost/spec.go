package pluginhost

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// validName is a plugin's name (a KV namespace, a log tag, a URL segment) and
// a built-in's.
var validName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// binary is an external plugin's executable, checked by checkBinary.
type binary struct {
	path string // resolved: no symlink left
	sum  []byte // the expected SHA-256
}

// checkBinary resolves path (relative to dir unless absolute) and checks that
// it is a regular, executable file inside dir after symlinks are resolved,
// that neither it nor a folder between dir and it is writable by everyone,
// and that its SHA-256 is sum (hex).
func checkBinary(dir, path, sum string) (binary, error) {
	want, err := hex.DecodeString(sum)
	if err != nil || len(want) != sha256.Size {
		return binary{}, errors.New("sha256 must be 64 hex digits")
	}
	if dir == "" {
		return binary{}, errors.New("an external plugin needs the plugin directory to be set")
	}
	root, err := filepath.Abs(dir)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return binary{}, fmt.Errorf("plugin directory: %w", err)
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(root, path)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return binary{}, fmt.Errorf("path: %w", err)
	}
	rel, err := filepath.Rel(root, real)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return binary{}, fmt.Errorf("%s resolves to %s, outside the plugin directory %s", path, real, root)
	}
	fi, err := os.Stat(real)
	switch {
	case err != nil:
		return binary{}, fmt.Errorf("path: %w", err)
	case !fi.Mode().IsRegular():
		return binary{}, fmt.Errorf("%s is not a regular file", real)
	case fi.Mode().Perm()&0o002 != 0:
		return binary{}, fmt.Errorf("%s is world-writable (mode %v): anyone could replace the plugin", real, fi.Mode().Perm())
	case fi.Mode().Perm()&0o111 == 0:
		return binary{}, fmt.Errorf("%s is not executable (mode %v)", real, fi.Mode().Perm())
	}
	// A folder anyone may write to (without the sticky bit) lets anyone rename
	// another binary over the plugin.
	for d := filepath.Dir(real); ; d = filepath.Dir(d) {
		di, err := os.Stat(d)
		if err != nil {
			return binary{}, fmt.Errorf("path: %w", err)
		}
		if di.Mode().Perm()&0o002 != 0 && di.Mode()&fs.ModeSticky == 0 {
			return binary{}, fmt.Errorf("folder %s is world-writable (mode %v): anyone could replace the plugin", d, di.Mode().Perm())
		}
		if d == root {
			break
		}
	}
	b := binary{path: real, sum: want}
	return b, b.verify()
}

// verify checks the file's SHA-256; it runs again before every start of the
// plugin, so a binary replaced after the host started is not run.
func (b binary) verify() error {
	f, err := os.Open(b.path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("reading %s: %w", b.path, err)
	}
	if got := h.Sum(nil); !bytes.Equal(got, b.sum) {
		return fmt.Errorf("checksum mismatch: %s has sha256 %x, the configuration says %x", b.path, got, b.sum)
	}
	return nil
}

// splitSecrets takes the ...Env settings out of a plugin's configuration
// block: each names an environment variable, looked up with lookup, whose
// value becomes the secret under the setting's dotted path without "Env"
// ({"smtp":{"passwordEnv":"SMTP_PASSWORD"}} gives "smtp.password"; array
// elements are numbered). It returns the block without them ("{}" for an
// empty block) and the secrets. Every problem is reported, by path; no value
// ever appears in an error.
func splitSecrets(raw json.RawMessage, lookup func(string) (string, bool)) (json.RawMessage, map[string]string, error) {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return json.RawMessage("{}"), nil, nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber() // numbers pass through unchanged
	var block any
	if err := d.Decode(&block); err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	if _, ok := block.(map[string]any); !ok {
		return nil, nil, errors.New("config must be an object")
	}
	s := secretSplitter{lookup: lookup, secrets: map[string]string{}}
	block = s.walk("", block)
	if len(s.errs) > 0 {
		return nil, nil, errors.Join(s.errs...)
	}
	out, err := json.Marshal(block)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	if len(s.secrets) == 0 {
		s.secrets = nil
	}
	return out, s.secrets, nil
}

type secretSplitter struct {
	lookup  func(string) (string, bool)
	secrets map[string]string
	errs    []error
}

func (s *secretSplitter) walk(path string, v any) any {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys) // errors in a stable order
		for _, k := range keys {
			name, isEnv := strings.CutSuffix(k, "Env")
			if !isEnv || name == "" {
				v[k] = s.walk(join(path, k), v[k])
				continue
			}
			s.resolve(join(path, k), join(path, name), v[k])
			delete(v, k)
		}
		return v
	case []any:
		for i := range v {
			v[i] = s.walk(join(path, strconv.Itoa(i)), v[i])
		}
		return v
	default:
		return v
	}
}

// resolve looks up the variable that setting names and keeps its value as
// the secret key.
func (s *secretSplitter) resolve(setting, key string, v any) {
	env, ok := v.(string)
	if !ok || env == "" {
		s.errs = append(s.errs, fmt.Errorf("config %s must name an environment variable", setting))
		return
	}
	if _, dup := s.secrets[key]; dup {
		s.errs = append(s.errs, fmt.Errorf("config %s: secret %q is set twice", setting, key))
		return
	}
	value, ok := s.lookup(env)
	if !ok {
		s.errs = append(s.errs, fmt.Errorf("config %s names %s, which is not set", setting, env))
		return
	}
	s.secrets[key] = value
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}
