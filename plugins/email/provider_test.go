package email_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/plugins/email"
	"github.com/gatehouse/gatehouse/plugins/email/smtptest"
	"github.com/gatehouse/gatehouse/plugins/sdk"
	"github.com/gatehouse/gatehouse/plugins/sdk/errs"
)

const (
	verifyLink = "https://id.example.com/auth/providers/email/verify?token="
	resetLink  = "https://id.example.com/auth/providers/email/reset?token="
	waitMail   = 5 * time.Second
)

// fixture is a configured provider on a fake host.
type fixture struct {
	p       *email.Provider
	kv      *memKV
	log     *memLog
	secrets []string // must never reach the log
	outbox  string   // may appear in the log
}

// setup configures a provider with raw and secrets on a fake host, and checks at
// the end of the test that the host log holds no token, link, address or secret.
func setup(t *testing.T, raw string, secrets map[string]string, opts ...func(*email.Provider)) *fixture {
	t.Helper()
	f := newFixture(t, opts...)
	if err := f.configure(t, raw, secrets); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return f
}

func newFixture(t *testing.T, opts ...func(*email.Provider)) *fixture {
	f := &fixture{p: email.New(), kv: newMemKV(), log: &memLog{}}
	for _, o := range opts {
		o(f.p)
	}
	t.Cleanup(func() {
		s := f.log.String()
		if f.outbox != "" {
			s = strings.ReplaceAll(s, f.outbox, "<outbox>")
		}
		checkNoLeak(t, "host log", s, f.secrets...)
	})
	return f
}

func (f *fixture) configure(t *testing.T, raw string, secrets map[string]string) error {
	for _, s := range secrets {
		f.secrets = append(f.secrets, s)
	}
	var c struct{ Outbox string }
	if json.Unmarshal([]byte(raw), &c) == nil && c.Outbox != "" {
		f.outbox = c.Outbox
	}
	return f.p.Configure(t.Context(), sdk.Config{Name: "email", Raw: json.RawMessage(raw), Secrets: secrets},
		sdk.Host{KV: f.kv, Log: f.log})
}

// smtpConfig returns a configuration sending to sink.
func smtpConfig(sink *smtptest.Sink, extra string) string {
	b, _ := json.Marshal(sink.SMTPConfig())
	s := `{"from": "Gatehouse <no-reply@example.com>", "productName": "Acme", "smtp": ` + string(b) + `}`
	if extra != "" {
		var m map[string]any
		_ = json.Unmarshal([]byte(s), &m)
		_ = json.Unmarshal([]byte(extra), &m)
		out, _ := json.Marshal(m)
		s = string(out)
	}
	return s
}

func hashOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func wantKind(t *testing.T, err error, want errs.Kind) {
	t.Helper()
	if got := errs.KindOf(err); err == nil || got != want {
		t.Fatalf("err = %v (kind %v), want kind %v", err, got, want)
	}
}

func TestDescribe(t *testing.T) {
	got, err := email.New().Describe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := sdk.PluginInfo{Name: "email", Kind: sdk.KindIdentityProvider, Version: email.Version,
		DisplayName: "Email and password", Capabilities: []string{sdk.CapMailVerification, sdk.CapPasswordReset}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Describe (-want +got):\n%s", diff)
	}
}

func TestUnconfiguredAndUnsupported(t *testing.T) {
	p := email.New()
	ctx := t.Context()
	wantKind(t, p.SendVerification(ctx, sdk.MailRequest{UserID: "u1", Email: "a@example.com", Link: verifyLink}), errs.Unavailable)
	_, err := p.ConfirmPasswordReset(ctx, "x")
	wantKind(t, err, errs.Unavailable)
	_, err = p.CheckPassword(ctx, "a@example.com", "password")
	wantKind(t, err, errs.NotFound)
	_, err = p.AuthURL(ctx, sdk.AuthURLRequest{})
	wantKind(t, err, errs.NotFound)
	_, err = p.Exchange(ctx, sdk.ExchangeRequest{})
	wantKind(t, err, errs.NotFound)
}

func TestVerificationThroughSMTP(t *testing.T) {
	sink := smtptest.Start(t)
	f := setup(t, smtpConfig(sink, ""), nil)
	ctx := t.Context()

	req := sdk.MailRequest{UserID: "u1", Email: "ada@example.com", DisplayName: `Ada <b>"&"</b> Lovelace`, Link: verifyLink}
	if err := f.p.SendVerification(ctx, req); err != nil {
		t.Fatalf("SendVerification: %v", err)
	}
	m := sink.Wait(t, 1, waitMail)[0]

	if m.From != "no-reply@example.com" || len(m.To) != 1 || m.To[0] != "ada@example.com" {
		t.Errorf("envelope from %q to %q", m.From, m.To)
	}
	if m.Subject != "Confirm your email address for Acme" {
		t.Errorf("Subject = %q", m.Subject)
	}
	for _, h := range []string{"From", "To", "Date", "Message-ID", "MIME-Version", "Subject"} {
		if m.Header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	if to, err := m.Header.AddressList("To"); err != nil || to[0].Address != "ada@example.com" || to[0].Name != req.DisplayName {
		t.Errorf("To = %v, %v", to, err)
	}
	if _, err := m.Header.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	if !strings.HasPrefix(m.Header.Get("Content-Type"), "multipart/alternative;") {
		t.Errorf("Content-Type = %q", m.Header.Get("Content-Type"))
	}
	for _, want := range []string{"Hello " + req.DisplayName + ",", "24 hours", "Acme"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text body lacks %q:\n%s", want, m.Text)
		}
	}
	if strings.Contains(m.HTML, "<b>") || !strings.Contains(m.HTML, "Ada &lt;b&gt;&#34;&amp;&#34;&lt;/b&gt; Lovelace") {
		t.Errorf("html body does not escape the name:\n%s", m.HTML)
	}

	link, token := m.Link(), m.Token()
	if !strings.HasPrefix(link, verifyLink) || !regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`).MatchString(token) {
		t.Fatalf("link %q, token %q", link, token)
	}
	if !strings.Contains(m.HTML, `href="`+link+`"`) {
		t.Errorf("html body lacks the link")
	}

	// Only the hash is stored, with the verification TTL.
	key := "verify:" + hashOf(token)
	if got := f.kv.keys("verify:"); len(got) != 1 || got[0] != key {
		t.Errorf("verify keys = %v, want [%s]", got, key)
	}
	if ttl := f.kv.ttls[key]; ttl != 24*time.Hour {
		t.Errorf("TTL = %v, want 24h", ttl)
	}
	if strings.Contains(f.kv.dump(), token) {
		t.Errorf("the store holds the token itself")
	}

	got, err := f.p.ConfirmVerification(ctx, token)
	if err != nil {
		t.Fatalf("ConfirmVerification: %v", err)
	}
	if diff := cmp.Diff(sdk.MailSubject{UserID: "u1", Email: "ada@example.com"}, got); diff != "" {
		t.Errorf("ConfirmVerification (-want +got):\n%s", diff)
	}
	_, err = f.p.ConfirmVerification(ctx, token)
	wantKind(t, err, errs.NotFound)
	if msg := errs.MessageOf(err); msg != "link is invalid or has expired" {
		t.Errorf("message = %q", msg)
	}
	// A verification token is no reset token.
	_, err = f.p.ConfirmPasswordReset(ctx, token)
	wantKind(t, err, errs.NotFound)
}

func TestConfirmJunk(t *testing.T) {
	f := setup(t, `{"from": "a@example.com", "outbox": "`+t.TempDir()+`"}`, nil)
	for _, token := range []string{"", "short", strings.Repeat("a", 43), strings.Repeat("!", 43), strings.Repeat("a", 44)} {
		_, err := f.p.ConfirmVerification(t.Context(), token)
		wantKind(t, err, errs.NotFound)
	}
}

func TestConcurrentConfirmations(t *testing.T) {
	sink := smtptest.Start(t)
	f := setup(t, smtpConfig(sink, ""), nil)
	for _, purpose := range []string{"verification", "reset"} {
		t.Run(purpose, func(t *testing.T) {
			sink.Reset()
			send, confirm := f.p.SendVerification, f.p.ConfirmVerification
			if purpose == "reset" {
				send, confirm = f.p.SendPasswordReset, f.p.ConfirmPasswordReset
			}
			if err := send(t.Context(), sdk.MailRequest{UserID: "u1", Email: "ada@example.com", Link: verifyLink}); err != nil {
				t.Fatal(err)
			}
			token := sink.Wait(t, 1, waitMail)[0].Token()

			var wg sync.WaitGroup
			var mu sync.Mutex
			wins, notFound := 0, 0
			for range 10 {
				wg.Go(func() {
					_, err := confirm(t.Context(), token)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						wins++
					case errs.KindOf(err) == errs.NotFound:
						notFound++
					default:
						t.Errorf("confirm: %v", err)
					}
				})
			}
			wg.Wait()
			if wins != 1 || notFound != 9 {
				t.Errorf("%d confirmations succeeded and %d were NotFound, want 1 and 9", wins, notFound)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	sink := smtptest.Start(t)
	f := setup(t, smtpConfig(sink, `{"verificationTTL": "2h", "resetTTL": "30m"}`), nil)
	ctx := t.Context()
	req := sdk.MailRequest{UserID: "u1", Email: "ada@example.com", Link: verifyLink}
	if err := f.p.SendVerification(ctx, req); err != nil {
		t.Fatal(err)
	}
	req.Link = resetLink
	if err := f.p.SendPasswordReset(ctx, req); err != nil {
		t.Fatal(err)
	}
	msgs := sink.Wait(t, 2, waitMail)
	verifyToken, resetToken := msgs[0].Token(), msgs[1].Token()
	if !strings.Contains(msgs[0].Text, "2 hours") || !strings.Contains(msgs[1].Text, "30 minutes") {
		t.Errorf("the mails do not say how long their links live:\n%s\n%s", msgs[0].Text, msgs[1].Text)
	}
	if ttl := f.kv.ttls["reset:"+hashOf(resetToken)]; ttl != 30*time.Minute {
		t.Errorf("reset TTL = %v, want 30m", ttl)
	}

	f.kv.advance(30*time.Minute + time.Second) // the reset link expires, the verification link lives on
	_, err := f.p.ConfirmPasswordReset(ctx, resetToken)
	wantKind(t, err, errs.NotFound)
	if _, err := f.p.ConfirmVerification(ctx, verifyToken); err != nil {
		t.Fatalf("ConfirmVerification after 30m: %v", err)
	}

	if err := f.p.SendVerification(ctx, sdk.MailRequest{UserID: "u2", Email: "bob@example.com", Link: verifyLink}); err != nil {
		t.Fatal(err)
	}
	token := sink.Wait(t, 3, waitMail)[2].Token()
	f.kv.advance(2 * time.Hour)
	_, err = f.p.ConfirmVerification(ctx, token)
	wantKind(t, err, errs.NotFound)
}

func TestNewMailInvalidatesPrevious(t *testing.T) {
	sink := smtptest.Start(t)
	f := setup(t, smtpConfig(sink, ""), nil)
	ctx := t.Context()
	req := sdk.MailRequest{UserID: "u1", Email: "ada@example.com", Link: verifyLink}
	other := sdk.MailRequest{UserID: "u2", Email: "bob@example.com", Link: verifyLink}

	for _, purpose := range []string{"verification", "reset"} {
		t.Run(purpose, func(t *testing.T) {
			sink.Reset()
			send, confirm, prefix := f.p.SendVerification, f.p.ConfirmVerification, "verify:"
			if purpose == "reset" {
				send, confirm, prefix = f.p.SendPasswordReset, f.p.ConfirmPasswordReset, "reset:"
			}
			for _, r := range []sdk.MailRequest{req, other, req} {
				if err := send(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			msgs := sink.Wait(t, 3, waitMail)
			if n := len(f.kv.keys(prefix)); n != 2 {
				t.Errorf("%d %s keys, want 2 (one per user)", n, prefix)
			}
			_, err := confirm(ctx, msgs[0].Token())
			wantKind(t, err, errs.NotFound)
			if got, err := confirm(ctx, msgs[2].Token()); err != nil || got.UserID != "u1" {
				t.Errorf("newest link of u1: %v, %v", got, err)
			}
			if got, err := confirm(ctx, msgs[1].Token()); err != nil || got.UserID != "u2" {
				t.Errorf("link of u2: %v, %v", got, err) // another user's mail does not touch it
			}
		})
	}
}

func TestConcurrentSendsLeaveOneLink(t *testing.T) {
	sink := smtptest.Start(t)
	f := setup(t, smtpConfig(sink, ""), nil)
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if err := f.p.SendVerification(t.Context(), sdk.MailRequest{UserID: "u1", Email: "ada@example.com", Link: verifyLink}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	msgs := sink.Wait(t, 5, waitMail)
	if keys := f.kv.keys("verify:"); len(keys) != 1 {
		t.Fatalf("%d verification tokens are valid, want 1", len(keys))
	}
	wins := 0
	for _, m := range msgs {
		if _, err := f.p.ConfirmVerification(t.Context(), m.Token()); err == nil {
			wins++
		}
	}
	if wins != 1 {
		t.Errorf("%d links worked, want 1", wins)
	}
}

func TestResetMail(t *testing.T) {
	sink := smtptest.Start(t)
	f := setup(t, smtpConfig(sink, ""), nil)
	req := sdk.MailRequest{UserID: "u1", Email: "ada@example.com", Link: resetLink}
	if err := f.p.SendPasswordReset(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	m := sink.Wait(t, 1, waitMail)[0]
	if m.Subject != "Reset your Acme password" {
		t.Errorf("Subject = %q", m.Subject)
	}
	for _, want := range []string{"Hello,", "1 hour", "If you did not ask for this, ignore this mail"} {
		if !strings.Contains(m.Text, want) || !strings.Contains(m.HTML, want) {
			t.Errorf("mail lacks %q:\n%s\n%s", want, m.Text, m.HTML)
		}
	}
	if !strings.HasPrefix(m.Link(), resetLink) {
		t.Errorf("link = %q", m.Link())
	}
	if ttl := f.kv.ttls["reset:"+hashOf(m.Token())]; ttl != time.Hour {
		t.Errorf("reset TTL = %v, want 1h", ttl)
	}
	got, err := f.p.ConfirmPasswordReset(t.Context(), m.Token())
	if err != nil || got != (sdk.MailSubject{UserID: "u1", Email: "ada@example.com"}) {
		t.Fatalf("ConfirmPasswordReset = %v, %v", got, err)
	}
	_, err = f.p.ConfirmPasswordReset(t.Context(), m.Token())
	wantKind(t, err, errs.NotFound)
}

func TestOutbox(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mail", "outbox")
	f := setup(t, `{"from": "Gatehouse <no-reply@localhost>", "outbox": "`+dir+`"}`, nil)
	ctx := t.Context()
	if err := f.p.SendVerification(ctx, sdk.MailRequest{UserID: "u1", Email: "ada@example.com", Link: verifyLink}); err != nil {
		t.Fatal(err)
	}
	if err := f.p.SendPasswordReset(ctx, sdk.MailRequest{UserID: "u1", Email: "ada@example.com", Link: resetLink}); err != nil {
		t.Fatal(err)
	}

	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("outbox mode %o, want 700", perm)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("outbox holds %d files, want 2", len(entries))
	}
	name := regexp.MustCompile(`^\d{8}T\d{6}\.\d{9}Z-[0-9a-f]{12}\.eml$`)
	var links []string
	for _, e := range entries {
		if !name.MatchString(e.Name()) {
			t.Errorf("file name %q", e.Name())
		}
		info, _ := e.Info()
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s mode %o, want 600", e.Name(), perm)
		}
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.ReplaceAll(string(raw), "\r\n", ""), "\n") {
			t.Errorf("%s has a bare LF", e.Name())
		}
		msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
		if err != nil {
			t.Fatalf("net/mail: %v", err)
		}
		if to, err := msg.Header.AddressList("To"); err != nil || to[0].Address != "ada@example.com" {
			t.Errorf("To = %v, %v", to, err)
		}
		m, err := smtptest.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		links = append(links, m.Link())
		token := m.Token()
		if strings.HasPrefix(m.Link(), verifyLink) {
			_, err = f.p.ConfirmVerification(ctx, token)
		} else {
			_, err = f.p.ConfirmPasswordReset(ctx, token)
		}
		if err != nil {
			t.Errorf("confirm %s: %v", e.Name(), err)
		}
	}
	if len(links) != 2 || links[0] == "" || links[1] == "" {
		t.Errorf("links = %q", links)
	}

	lines := f.log.all()
	if len(lines) != 1 || lines[0].level != "info" || lines[0].fields["outbox"] != dir {
		t.Errorf("host log = %v, want one info line naming the outbox", lines)
	}
}

func TestOutboxNarrowsAnExistingFolder(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	setup(t, `{"from": "a@example.com", "outbox": "`+dir+`"}`, nil)
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("outbox mode %o, want 700", fi.Mode().Perm())
	}
}

func TestStartLineNamesSMTPServer(t *testing.T) {
	sink := smtptest.Start(t)
	f := setup(t, smtpConfig(sink, ""), nil)
	lines := f.log.all()
	if len(lines) != 1 || lines[0].fields["smtp"] != sink.Addr {
		t.Errorf("host log = %v, want one line naming %s", lines, sink.Addr)
	}
}

func TestSMTPAuth(t *testing.T) {
	const user, pass = "mailer", "s3cret-Pa55word"
	sink := smtptest.StartWithAuth(t, user, pass)
	cfg := smtpConfig(sink, "") // the host has taken passwordEnv out and put the password in the secrets
	req := sdk.MailRequest{UserID: "u1", Email: "ada@example.com", Link: verifyLink}

	t.Run("right password", func(t *testing.T) {
		f := setup(t, cfg, map[string]string{"smtp.password": pass})
		if err := f.p.SendVerification(t.Context(), req); err != nil {
			t.Fatalf("SendVerification: %v", err)
		}
		m := sink.Wait(t, 1, waitMail)[0]
		if _, err := f.p.ConfirmVerification(t.Context(), m.Token()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		const wrong = "wr0ng-Pa55word"
		f := setup(t, cfg, map[string]string{"smtp.password": wrong})
		err := f.p.SendVerification(t.Context(), req)
		wantKind(t, err, errs.Unavailable)
		if msg := errs.MessageOf(err); msg != "mail server unavailable" {
			t.Errorf("message = %q", msg)
		}
		checkNoLeak(t, "error", err.Error(), wrong, pass)
		if !strings.Contains(err.Error(), "535") {
			t.Errorf("the cause should keep the server's answer for the log: %v", err)
		}
		if keys := f.kv.keys("verify"); len(keys) != 0 {
			t.Errorf("a failed mail left keys: %v", keys)
		}
		if n := len(sink.Messages()); n != 1 {
			t.Errorf("sink holds %d messages, want 1 (the first subtest's)", n)
		}
	})
}

func TestTLS(t *testing.T) {
	req := sdk.MailRequest{UserID: "u1", Email: "ada@example.com", Link: verifyLink}
	for _, mode := range []string{"starttls", "implicit"} {
		t.Run(mode, func(t *testing.T) {
			sink := smtptest.StartWith(t, smtptest.Options{TLS: mode, Username: "mailer", Password: "pw-over-tls"})
			cfg := smtpConfig(sink, "")
			f := setup(t, cfg, map[string]string{"smtp.password": "pw-over-tls"},
				func(p *email.Provider) { email.SetRootCAs(p, sink.RootCAs) })
			if err := f.p.SendVerification(t.Context(), req); err != nil {
				t.Fatalf("SendVerification: %v", err)
			}
			sink.Wait(t, 1, waitMail)
		})
	}
	t.Run("starttls not offered", func(t *testing.T) {
		sink := smtptest.Start(t)
		f := setup(t, smtpConfig(sink, `{"smtp": {"host": "`+sink.Host+`", "port": `+itoa(sink.Port)+`, "tls": "starttls"}}`), nil)
		err := f.p.SendVerification(t.Context(), req)
		wantKind(t, err, errs.Unavailable)
		if !strings.Contains(err.Error(), "STARTTLS") {
			t.Errorf("err = %v, want it to name STARTTLS", err)
		}
		if n := len(sink.Messages()); n != 0 {
			t.Errorf("sent %d messages in clear", n)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		sink := smtptest.StartWith(t, smtptest.Options{TLS: "starttls"})
		f := setup(t, smtpConfig(sink, `{"smtp": {"host": "`+sink.Host+`", "port": `+itoa(sink.Port)+`, "tls": "starttls"}}`), nil)
		wantKind(t, f.p.SendVerification(t.Context(), req), errs.Unavailable)
	})
}

func TestSMTPDownOrSilent(t *testing.T) {
	req := sdk.MailRequest{UserID: "u1", Email: "ada@example.com", Link: verifyLink}

	t.Run("refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		f := setup(t, `{"from": "a@example.com", "smtp": {"host": "127.0.0.1", "port": `+itoa(port)+`, "tls": "none"}}`, nil)
		wantKind(t, f.p.SendVerification(t.Context(), req), errs.Unavailable)
		if keys := f.kv.keys(""); len(keys) != 0 {
			t.Errorf("a failed mail left keys: %v", keys)
		}
	})

	// A server that accepts the connection and never greets: the timeout ends it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	port := itoa(ln.Addr().(*net.TCPAddr).Port)

	t.Run("timeout", func(t *testing.T) {
		f := setup(t, `{"from": "a@example.com", "smtp": {"host": "127.0.0.1", "port": `+port+`, "tls": "none", "timeout": "200ms"}}`, nil)
		start := time.Now()
		wantKind(t, f.p.SendVerification(t.Context(), req), errs.Unavailable)
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %v", d)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		f := setup(t, `{"from": "a@example.com", "smtp": {"host": "127.0.0.1", "port": `+port+`, "tls": "none"}}`, nil)
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := f.p.SendVerification(ctx, req)
		wantKind(t, err, errs.Unavailable)
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %v", d)
		}
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Errorf("ctx: %v", ctx.Err())
		}
	})
}

func TestBadRequests(t *testing.T) {
	f := setup(t, `{"from": "a@example.com", "outbox": "`+t.TempDir()+`"}`, nil)
	for _, req := range []sdk.MailRequest{
		{Email: "ada@example.com", Link: verifyLink},
		{UserID: "u1", Email: "not an address", Link: verifyLink},
		{UserID: "u1", Email: "Ada <ada@example.com>", Link: verifyLink},
		{UserID: "u1", Email: "ada@example.com\r\nBcc: eve@example.com", Link: verifyLink},
		{UserID: "u1", Email: "ada@example.com", Link: "https://id.example.com/verify"},
		{UserID: "u1", Email: "ada@example.com", Link: "javascript:alert(1)//token="},
		{UserID: "u1", Email: "ada@example.com", Link: "https://id.example.com/\r\nverify?token="},
	} {
		wantKind(t, f.p.SendVerification(t.Context(), req), errs.Invalid)
	}
}

func TestConfigErrors(t *testing.T) {
	outbox := t.TempDir()
	for _, tc := range []struct {
		name, raw string
		secrets   map[string]string
		want      []string // in the message
	}{
		{"unknown keys", `{"from": "a@example.com", "outbox": "` + outbox + `", "bogus": 1, "smtp": {"hots": "x", "port": 25}}`, nil,
			[]string{"unknown keys: bogus, smtp.hots"}},
		{"missing from", `{"outbox": "` + outbox + `"}`, nil, []string{"from is required"}},
		{"bad from", `{"from": "not a mailbox", "outbox": "` + outbox + `"}`, nil, []string{"from is not one RFC 5322 mailbox"}},
		{"no delivery", `{"from": "a@example.com"}`, nil, []string{"outbox is required when smtp.host is empty"}},
		{"several problems", `{"from": "", "resetTTL": "0s", "smtp": {"host": "mail.example.com", "tls": "ssl"}}`, nil,
			[]string{"from is required", "resetTTL must be positive", "smtp.tls must be starttls, implicit or none"}},
		{"bad duration", `{"from": "a@example.com", "outbox": "` + outbox + `", "verificationTTL": "a day"}`, nil,
			[]string{`"a day" is not a duration`}},
		{"wrong type", `{"from": "a@example.com", "outbox": "` + outbox + `", "smtp": {"port": "25"}}`, nil,
			[]string{"smtp.port"}},
		{"password in clear", `{"from": "a@example.com", "smtp": {"host": "mail.example.com", "tls": "none", "username": "u"}}`,
			map[string]string{"smtp.password": "pw-in-clear"}, []string{"smtp.username would send the password in clear"}},
		{"no password", `{"from": "a@example.com", "smtp": {"host": "mail.example.com", "username": "u"}}`, nil,
			[]string{"smtp.passwordEnv gives an empty password"}},
		{"password without user", `{"from": "a@example.com", "smtp": {"host": "mail.example.com"}}`,
			map[string]string{"smtp.password": "pw-no-user"}, []string{"smtp.username is required"}},
		{"not JSON", `{"from": `, nil, []string{"email config:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			err := f.configure(t, tc.raw, tc.secrets)
			wantKind(t, err, errs.Invalid)
			msg := errs.MessageOf(err)
			for _, want := range tc.want {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q lacks %q", msg, want)
				}
			}
			for _, s := range tc.secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error holds the password: %v", err)
				}
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := email.ParseConfig(json.RawMessage(`{"from": "a@example.com", "smtp": {"host": "mail.example.com"}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := email.Config{From: "a@example.com", ProductName: "Gatehouse",
		SMTP:            email.SMTPConfig{Host: "mail.example.com", Port: 587, TLS: "starttls", Timeout: sdk.Duration(10 * time.Second)},
		VerificationTTL: sdk.Duration(24 * time.Hour), ResetTTL: sdk.Duration(time.Hour)}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("ParseConfig (-want +got):\n%s", diff)
	}
	for mode, port := range map[string]int{"implicit": 465, "none": 25} {
		cfg, err := email.ParseConfig(json.RawMessage(`{"from": "a@example.com", "smtp": {"host": "localhost", "tls": "` + mode + `"}}`))
		if err != nil || cfg.SMTP.Port != port {
			t.Errorf("tls %s: port %d, %v; want %d", mode, cfg.SMTP.Port, err, port)
		}
	}
}

func TestReconfigure(t *testing.T) {
	sink := smtptest.Start(t)
	dir := t.TempDir()
	f := setup(t, `{"from": "a@example.com", "outbox": "`+dir+`"}`, nil)
	if err := f.configure(t, smtpConfig(sink, ""), nil); err != nil {
		t.Fatal(err)
	}
	if err := f.p.SendVerification(t.Context(), sdk.MailRequest{UserID: "u1", Email: "ada@example.com", Link: verifyLink}); err != nil {
		t.Fatal(err)
	}
	sink.Wait(t, 1, waitMail)
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the outbox got mail after reconfiguration")
	}
	// A bad configuration leaves the working one in place.
	if err := f.configure(t, `{"bogus": true}`, nil); err == nil {
		t.Fatal("bad configuration accepted")
	}
	if err := f.p.SendVerification(t.Context(), sdk.MailRequest{UserID: "u1", Email: "ada@example.com", Link: verifyLink}); err != nil {
		t.Fatal(err)
	}
	sink.Wait(t, 2, waitMail)
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
