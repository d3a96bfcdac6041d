package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/gatehouse/gatehouse/core"
)

// defaultAdminURL is where the CLI verbs find the admin API by default.
const defaultAdminURL = "http://127.0.0.1:9876"

// Time limits of one CLI call: doctor walks the whole store.
const (
	keyCallTimeout    = 30 * time.Second
	doctorCallTimeout = 10 * time.Minute
)

// maxResponse bounds what the CLI reads from the admin API.
const maxResponse = 32 << 20

// cliEnv is what a CLI verb reads and writes besides its arguments.
type cliEnv struct {
	stdout, stderr io.Writer
	env            lookupEnv
}

// adminKeysUsage is printed by `gatehouse admin-keys` without a verb.
const adminKeysUsage = `usage:
  gatehouse admin-keys create --name NAME [--scope admin|read|publicala|gaio|qloud]
  gatehouse admin-keys list
  gatehouse admin-keys revoke ID

create prints the new key alone on stdout (KEY=$(gatehouse admin-keys create --name ci))
and its id, name and scope on stderr; the key is not shown again.
Each verb takes --admin-url URL (env GATEHOUSE_ADMIN_URL, default ` + defaultAdminURL + `)
and sends GATEHOUSE_ADMIN_KEY, a key of scope admin.
`

// runAdminKeys dispatches `gatehouse admin-keys VERB`.
func runAdminKeys(ctx context.Context, args []string, e cliEnv) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, adminKeysUsage)
		return exitUsage
	}
	switch args[0] {
	case "create":
		return createAdminKey(ctx, args[1:], e)
	case "list", "ls":
		return listAdminKeys(ctx, args[1:], e)
	case "revoke", "delete", "rm":
		return revokeAdminKey(ctx, args[1:], e)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(e.stdout, adminKeysUsage)
		return exitOK
	default:
		fmt.Fprintf(e.stderr, "gatehouse: unknown admin-keys verb %q\n%s", args[0], adminKeysUsage)
		return exitUsage
	}
}

// adminKey is an admin key as the admin API shows it; Key only at creation.
type adminKey struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Scope      string `json:"scope"`
	Prefix     string `json:"prefix"`
	Key        string `json:"key,omitempty"`
	CreatedAt  string `json:"createdAt"`
	LastUsedAt string `json:"lastUsedAt,omitempty"`
}

// createAdminKey runs `gatehouse admin-keys create`: the key alone on stdout, so
// that KEY=$(gatehouse admin-keys create --name ci) works; the rest on stderr.
func createAdminKey(ctx context.Context, args []string, e cliEnv) int {
	fs, adminURL := newCLIFlags("admin-keys create --name NAME [--scope SCOPE]", e)
	name := fs.String("name", "", "the key's `name` (unique; required)")
	scope := fs.String("scope", "admin", "`scope`: admin, read, publicala, gaio or qloud")
	pos, code := parseCLIArgs(fs, args)
	if code >= 0 {
		return code
	}
	if *name == "" || len(pos) > 0 {
		return usageError(fs, "create takes --name NAME and no other argument")
	}
	c, code := newAdminClient(*adminURL, keyCallTimeout, e)
	if code >= 0 {
		return code
	}
	var k adminKey
	req := map[string]string{"name": *name, "scope": *scope}
	if err := c.call(ctx, http.MethodPost, "/admin-keys", req, &k); err != nil {
		return reportError(e.stderr, err)
	}
	fmt.Fprintln(e.stdout, k.Key)
	fmt.Fprintf(e.stderr, "created admin key %s (name %s, scope %s); the key is shown only this once\n", k.ID, k.Name, k.Scope)
	return exitOK
}

// listAdminKeys runs `gatehouse admin-keys list`: a table, never a secret.
func listAdminKeys(ctx context.Context, args []string, e cliEnv) int {
	fs, adminURL := newCLIFlags("admin-keys list", e)
	pos, code := parseCLIArgs(fs, args)
	if code >= 0 {
		return code
	}
	if len(pos) > 0 {
		return usageError(fs, "list takes no argument")
	}
	c, code := newAdminClient(*adminURL, keyCallTimeout, e)
	if code >= 0 {
		return code
	}
	var resp struct {
		AdminKeys []adminKey `json:"adminKeys"`
	}
	if err := c.call(ctx, http.MethodGet, "/admin-keys", nil, &resp); err != nil {
		return reportError(e.stderr, err)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPE\tPREFIX\tCREATED\tLAST-USED")
	for _, k := range resp.AdminKeys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Scope, k.Prefix, k.CreatedAt, cmp.Or(k.LastUsedAt, "never"))
	}
	if err := tw.Flush(); err != nil {
		return reportError(e.stderr, err)
	}
	return exitOK
}

// revokeAdminKey runs `gatehouse admin-keys revoke ID`.
func revokeAdminKey(ctx context.Context, args []string, e cliEnv) int {
	fs, adminURL := newCLIFlags("admin-keys revoke ID", e)
	pos, code := parseCLIArgs(fs, args)
	if code >= 0 {
		return code
	}
	if len(pos) != 1 || pos[0] == "" {
		return usageError(fs, "revoke takes exactly one key id (see gatehouse admin-keys list)")
	}
	c, code := newAdminClient(*adminURL, keyCallTimeout, e)
	if code >= 0 {
		return code
	}
	if err := c.call(ctx, http.MethodDelete, "/admin-keys/"+url.PathEscape(pos[0]), nil, nil); err != nil {
		return reportError(e.stderr, err)
	}
	fmt.Fprintf(e.stdout, "revoked admin key %s\n", pos[0])
	return exitOK
}

// runDoctor runs `gatehouse doctor [--repair]`: prints the leftovers found, and
// exits 1 when there were some and they were not repaired.
func runDoctor(ctx context.Context, args []string, e cliEnv) int {
	fs, adminURL := newCLIFlags("doctor [--repair]", e)
	repair := fs.Bool("repair", false, "remove the leftovers found")
	pos, code := parseCLIArgs(fs, args)
	if code >= 0 {
		return code
	}
	if len(pos) > 0 {
		return usageError(fs, "doctor takes no argument")
	}
	c, code := newAdminClient(*adminURL, doctorCallTimeout, e)
	if code >= 0 {
		return code
	}
	method, path := http.MethodGet, "/doctor"
	if *repair {
		method, path = http.MethodPost, "/doctor/repair"
	}
	var report map[string]json.RawMessage
	if err := c.call(ctx, method, path, nil, &report); err != nil {
		return reportError(e.stderr, err)
	}
	found, repaired := printDoctorReport(e.stdout, report)
	if found > 0 && !repaired {
		return exitFail
	}
	return exitOK
}

// doctorOrder lists the report's known sections first; any other list the API adds
// is printed after them, in name order.
var doctorOrder = []string{"staleClaims", "danglingIndex", "staleGrants"}

// printDoctorReport prints each list of leftovers and a summary line, and returns
// how many leftovers there were and whether the API says it repaired them.
func printDoctorReport(w io.Writer, report map[string]json.RawMessage) (found int, repaired bool) {
	_ = json.Unmarshal(report["repaired"], &repaired)
	names := slices.Sorted(maps.Keys(report))
	slices.SortStableFunc(names, func(a, b string) int {
		return cmp.Compare(orderOf(a), orderOf(b))
	})
	for _, name := range names {
		var items []json.RawMessage
		if json.Unmarshal(report[name], &items) != nil {
			continue // not a list: "repaired" and any scalar
		}
		found += len(items)
		printDoctorSection(w, words(name), items)
	}
	switch {
	case found == 0:
		fmt.Fprintln(w, "no leftovers found")
	case repaired:
		fmt.Fprintf(w, "repaired %d leftover(s)\n", found)
	default:
		fmt.Fprintf(w, "found %d leftover(s); run `gatehouse doctor --repair` to remove them\n", found)
	}
	return found, repaired
}

// orderOf ranks a report section: known ones first, in doctorOrder.
func orderOf(name string) int {
	if i := slices.Index(doctorOrder, name); i >= 0 {
		return i
	}
	return len(doctorOrder)
}

// printDoctorSection prints a titled list of leftovers, or "none".
func printDoctorSection(w io.Writer, title string, items []json.RawMessage) {
	if len(items) == 0 {
		fmt.Fprintf(w, "%s: none\n", title)
		return
	}
	fmt.Fprintf(w, "%s: %d\n", title, len(items))
	for _, it := range items {
		fmt.Fprintf(w, "  %s\n", describeItem(it))
	}
}

// describeItem renders one leftover: a string as is, an object as sorted
// key=value pairs, anything else as compact JSON.
func describeItem(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		var buf bytes.Buffer
		if json.Compact(&buf, raw) != nil {
			return string(raw)
		}
		return buf.String()
	}
	parts := make([]string, 0, len(obj))
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		parts = append(parts, k+"="+describeItem(obj[k]))
	}
	return strings.Join(parts, "  ")
}

// words turns a camelCase name into lower-case words: "staleClaims" → "stale claims".
func words(name string) string {
	var b strings.Builder
	for i, r := range name {
		if unicode.IsUpper(r) && i > 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// newCLIFlags returns a verb's FlagSet with --admin-url defined.
func newCLIFlags(usage string, e cliEnv) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("gatehouse "+usage, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	def, ok := e.env.get("GATEHOUSE_ADMIN_URL")
	if !ok {
		def = defaultAdminURL
	}
	adminURL := fs.String("admin-url", def, "admin API base `URL` [$GATEHOUSE_ADMIN_URL]")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: gatehouse %s\n", usage)
		fs.PrintDefaults()
	}
	return fs, adminURL
}

// parseCLIArgs parses flags placed anywhere among args and returns the other
// arguments; code is -1 to go on, else the exit status (0 after -h).
func parseCLIArgs(fs *flag.FlagSet, args []string) (pos []string, code int) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK
			}
			return nil, exitUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, -1
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// usageError prints msg and the verb's usage, and returns exit status 2.
func usageError(fs *flag.FlagSet, msg string) int {
	fmt.Fprintf(fs.Output(), "gatehouse: %s\n", msg)
	fs.Usage()
	return exitUsage
}

// adminClient calls a running instance's admin API with an admin key.
type adminClient struct {
	base string // no trailing slash
	key  string
	http *http.Client
}

// newAdminClient checks the URL and GATEHOUSE_ADMIN_KEY; code is -1 when the
// client is usable, else the exit status after a message on stderr.
func newAdminClient(rawURL string, timeout time.Duration, e cliEnv) (*adminClient, int) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(e.stderr, "gatehouse: --admin-url %q is not an http:// or https:// URL\n", rawURL)
		return nil, exitUsage
	}
	key, ok := e.env.get("GATEHOUSE_ADMIN_KEY")
	if !ok {
		fmt.Fprintln(e.stderr, "gatehouse: GATEHOUSE_ADMIN_KEY is not set: export an admin key of scope admin")
		return nil, exitUsage
	}
	return &adminClient{
		base: strings.TrimRight(rawURL, "/"),
		key:  key,
		http: &http.Client{Timeout: timeout},
	}, -1
}

// call sends in (if not nil) as JSON and decodes a 2xx answer into out (if not
// nil). Other answers become a *problem; a failed connection an *unreachableError.
func (c *adminClient) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		js, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(js)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("x-api-key", c.key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "gatehouse-cli/"+buildVersion())
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &unreachableError{url: c.base, err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("reading the answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return problemFrom(resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s answered unexpected JSON: %w", method, path, err)
	}
	return nil
}

// problem is an RFC 7807 error answer.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field  string `json:"field"`
		Detail string `json:"detail"`
	} `json:"errors"`
}

// problemFrom decodes an error answer; a body that is not problem+json (from a
// proxy, say) still gives the status and its standard title.
func problemFrom(status int, body []byte) *problem {
	var p problem
	_ = json.Unmarshal(body, &p)
	p.Status = status
	p.Title = cmp.Or(p.Title, http.StatusText(status))
	return &p
}

// Error is "STATUS TITLE: DETAIL".
func (p *problem) Error() string {
	msg := fmt.Sprintf("%d %s", p.Status, p.Title)
	if p.Detail != "" {
		msg += ": " + p.Detail
	}
	return msg
}

// unreachableError is a failed connection to the admin API.
type unreachableError struct {
	url string
	err error
}

// Error hints at the usual cause of a refused connection.
func (e *unreachableError) Error() string {
	if errors.Is(e.err, syscall.ECONNREFUSED) {
		return fmt.Sprintf("nothing answers at %s (connection refused): is `gatehouse serve` running? Set --admin-url or GATEHOUSE_ADMIN_URL", e.url)
	}
	return fmt.Sprintf("cannot reach the admin API at %s: %v", e.url, e.err)
}

func (e *unreachableError) Unwrap() error { return e.err }

// reportError prints err as `gatehouse: ...` (a problem's field errors one per
// line) and returns exit status 1.
func reportError(w io.Writer, err error) int {
	fmt.Fprintf(w, "gatehouse: %v\n", err)
	if p, ok := errors.AsType[*problem](err); ok {
		for _, fe := range p.Errors {
			fmt.Fprintf(w, "  %s: %s\n", cmp.Or(fe.Field, "-"), fe.Detail)
		}
	}
	return exitFail
}

// encryptionKeyUsage is the help of `gatehouse encryption-key`.
const encryptionKeyUsage = `usage: gatehouse encryption-key [--id ID]

Prints a new key for GATEHOUSE_ENCRYPTION_KEYS, as ID:KEY (KEY: 32 random bytes
in base64), alone on stdout. ID names the key in what it encrypts: letters,
digits, '-' or '_', at most 32; by default k and the current UTC time.

First key:
  export GATEHOUSE_ENCRYPTION_KEYS="$(gatehouse encryption-key)"

Rotation: put the new key first and keep the old ones after it.
  export GATEHOUSE_ENCRYPTION_KEYS="$(gatehouse encryption-key),$GATEHOUSE_ENCRYPTION_KEYS"
The first key encrypts every secret stored from then on; the others still
decrypt the secrets stored under them, which are not re-encrypted: removing a
key makes its secrets unreadable. Every instance sharing a Redis needs the same
list.
`

// encryptionKeyBytes is the length of an encryption key: AES-256.
const encryptionKeyBytes = 32

// runEncryptionKey runs `gatehouse encryption-key [--id ID]`.
func runEncryptionKey(args []string, e cliEnv, now func() time.Time) int {
	fs := flag.NewFlagSet("gatehouse encryption-key", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), encryptionKeyUsage)
		fs.PrintDefaults()
	}
	id := fs.String("id", "k"+now().UTC().Format("20060102T150405"), "the key's `ID`")
	pos, code := parseCLIArgs(fs, args)
	if code >= 0 {
		return code
	}
	if len(pos) > 0 {
		return usageError(fs, "encryption-key takes no argument")
	}
	secret := make([]byte, encryptionKeyBytes)
	rand.Read(secret) // never fails; it crashes the program if the system has no randomness
	entry := *id + ":" + base64.StdEncoding.EncodeToString(secret)
	// The keyring's own parser judges the entry, so that what is printed is
	// what a start accepts.
	if _, err := core.ParseKeyring(entry); err != nil {
		return usageError(fs, fmt.Sprintf("--id %q: an ID is 1 to 32 letters, digits, '-' or '_'", *id))
	}
	fmt.Fprintln(e.stdout, entry)
	return exitOK
}
