// Package smtptest runs a real SMTP server on a loopback port that keeps every
// message it accepts, for tests of code that sends mail:
//
//	sink := smtptest.Start(t)                  // or StartWithAuth(t, "user", "pass")
//	// configure the sender with sink.Host, sink.Port (no TLS)
//	msg := sink.Wait(t, 1, 5*time.Second)[0]
//	link := msg.Link()                         // first link holding "token="
//
// Messages are parsed as they arrive: headers, the decoded text/plain and
// text/html bodies. Parse does the same for an .eml file from an outbox.
package smtptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options configure a sink. The zero value accepts any mail in clear, without AUTH.
type Options struct {
	// Username and Password, when Username is set, make the sink offer AUTH PLAIN
	// and refuse mail from clients that did not authenticate with them. AUTH is
	// allowed in clear (the sink only listens on loopback).
	Username, Password string
	// TLS is "" (clear), "starttls" (offer STARTTLS) or "implicit" (TLS from the
	// first byte), with a self-signed certificate for 127.0.0.1 and localhost
	// that Sink.RootCAs trusts.
	TLS string
}

// Sink is a running SMTP server that keeps what it receives.
type Sink struct {
	Addr    string         // "127.0.0.1:port"
	Host    string         // "127.0.0.1"
	Port    int            // the port it listens on
	RootCAs *x509.CertPool // trusts the sink's certificate; nil without TLS

	opts   Options
	server *smtp.Server

	mu       sync.Mutex
	messages []Message
	changed  chan struct{} // closed and replaced on every new message
}

// Message is one mail the sink accepted.
type Message struct {
	From   string      // the envelope sender (MAIL FROM)
	To     []string    // the envelope recipients (RCPT TO)
	Header mail.Header // the parsed message headers
	// Subject is the decoded Subject header.
	Subject string
	Text    string // the decoded text/plain body ("" if none)
	HTML    string // the decoded text/html body ("" if none)
	Raw     []byte // the message as received, CRLF line ends
}

// Start runs a sink on 127.0.0.1 that accepts any mail, without TLS or AUTH;
// t.Cleanup stops it.
func Start(t testing.TB) *Sink { return StartWith(t, Options{}) }

// StartWithAuth runs a sink that requires AUTH PLAIN with user and pass (in
// clear, over loopback); t.Cleanup stops it.
func StartWithAuth(t testing.TB, user, pass string) *Sink {
	return StartWith(t, Options{Username: user, Password: pass})
}

// StartWith runs a sink with opts; t.Cleanup stops it.
func StartWith(t testing.TB, opts Options) *Sink {
	t.Helper()
	s := &Sink{opts: opts, changed: make(chan struct{})}
	srv := smtp.NewServer(backend{s})
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.MaxMessageBytes = 10 << 20
	log := &logger{t: t}
	srv.ErrorLog = log
	s.server = srv

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	switch opts.TLS {
	case "":
	case "starttls", "implicit":
		cert, pool, err := selfSigned()
		if err != nil {
			ln.Close()
			t.Fatalf("smtptest: certificate: %v", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.RootCAs = pool
		if opts.TLS == "implicit" {
			ln = tls.NewListener(ln, srv.TLSConfig)
		}
	default:
		ln.Close()
		t.Fatalf("smtptest: TLS %q: want \"\", \"starttls\" or \"implicit\"", opts.TLS)
	}
	s.Addr = ln.Addr().String()
	host, port, _ := net.SplitHostPort(s.Addr)
	s.Host = host
	s.Port, _ = strconv.Atoi(port)

	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // returns when closed
	}()
	t.Cleanup(func() {
		srv.Close()
		ln.Close() // in case Serve had not registered it yet
		<-done
		log.stop()
	})
	return s
}

// SMTPConfig returns the "smtp" block of an email provider configuration that
// sends to this sink: host, port, tls ("none" without TLS) and username when
// the sink requires AUTH. The password goes in the provider's secrets
// ("smtp.password"), or in the variable that smtp.passwordEnv names. A sink with
// TLS also needs the provider to trust RootCAs, which a configuration cannot say.
func (s *Sink) SMTPConfig() map[string]any {
	mode := s.opts.TLS
	if mode == "" {
		mode = "none"
	}
	c := map[string]any{"host": s.Host, "port": s.Port, "tls": mode}
	if s.opts.Username != "" {
		c["username"] = s.opts.Username
	}
	return c
}

// Messages returns the messages received so far, oldest first.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Wait waits until the sink holds at least n messages and returns them all,
// oldest first; it fails t after timeout.
func (s *Sink) Wait(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		msgs, changed := append([]Message(nil), s.messages...), s.changed
		s.mu.Unlock()
		if len(msgs) >= n {
			return msgs
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("smtptest: got %d messages after %v, want %d", len(msgs), timeout, n)
			return nil
		}
	}
}

// WaitFor waits for the first message (oldest first) to the envelope recipient
// addr and returns it; it fails t after timeout.
func (s *Sink) WaitFor(t testing.TB, addr string, timeout time.Duration) Message {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		msgs, changed := s.messages, s.changed
		s.mu.Unlock()
		for _, m := range msgs {
			for _, to := range m.To {
				if strings.EqualFold(to, addr) {
					return m
				}
			}
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("smtptest: no message to %s after %v (%d messages in all)", addr, timeout, len(msgs))
			return Message{}
		}
	}
}

// Reset forgets the messages received so far.
func (s *Sink) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = nil
}

// Link returns the first link in the message that contains "token=": from the
// text body, else from the HTML body's hrefs; "" if there is none.
func (m Message) Link() string {
	if l := linkRE.FindString(m.Text); l != "" {
		return l
	}
	for _, sub := range hrefRE.FindAllStringSubmatch(m.HTML, -1) {
		if l := htmlUnescape(sub[1]); strings.Contains(l, "token=") {
			return l
		}
	}
	return ""
}

// Token returns the token parameter of Link, or "".
func (m Message) Token() string {
	u, err := url.Parse(m.Link())
	if err != nil {
		return ""
	}
	return u.Query().Get("token")
}

var (
	linkRE = regexp.MustCompile(`https?://[^\s<>"']*token=[^\s<>"']*`)
	hrefRE = regexp.MustCompile(`href="([^"]*)"`)
)

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#61;", "=", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'").Replace(s)
}

// Parse parses a raw RFC 5322 message (as an outbox .eml file holds it) into a
// Message with decoded subject and bodies; From and To are left empty.
func Parse(raw []byte) (Message, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Message{}, fmt.Errorf("smtptest: %w", err)
	}
	m := Message{Header: msg.Header, Raw: raw}
	dec := new(mime.WordDecoder)
	if m.Subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return Message{}, fmt.Errorf("smtptest: subject: %w", err)
	}
	if err := m.walk(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body); err != nil {
		return Message{}, fmt.Errorf("smtptest: body: %w", err)
	}
	return m, nil
}

// walk fills Text and HTML from the first text/plain and text/html parts, in
// nested multiparts too.
func (m *Message) walk(contentType, encoding string, body io.Reader) error {
	if contentType == "" {
		contentType = "text/plain"
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return err
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextRawPart() // decode transfer encodings ourselves
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := m.walk(part.Header.Get("Content-Type"), part.Header.Get("Content-Transfer-Encoding"), part); err != nil {
				return err
			}
		}
	}
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, &newlineStripper{r: body})
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	switch {
	case mediaType == "text/plain" && m.Text == "":
		m.Text = text
	case mediaType == "text/html" && m.HTML == "":
		m.HTML = text
	}
	return nil
}

// newlineStripper drops CR and LF, which base64 bodies hold every 76 characters.
type newlineStripper struct{ r io.Reader }

func (n *newlineStripper) Read(p []byte) (int, error) {
	for {
		k, err := n.r.Read(p)
		j := 0
		for _, c := range p[:k] {
			if c != '\r' && c != '\n' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// backend hands each connection a session.
type backend struct{ s *Sink }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{sink: b.s}, nil }

// session is one client connection's transaction.
type session struct {
	sink   *Sink
	authed bool
	from   string
	to     []string
}

var errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}

func (ss *session) needAuth() bool { return ss.sink.opts.Username != "" && !ss.authed }

func (ss *session) AuthMechanisms() []string {
	if ss.sink.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if ss.sink.opts.Username == "" || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != ss.sink.opts.Username || pass != ss.sink.opts.Password {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.needAuth() {
		return errAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.needAuth() {
		return errAuthRequired
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	if ss.needAuth() {
		return errAuthRequired
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := Parse(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: err.Error()}
	}
	m.From, m.To = ss.from, ss.to

	s := ss.sink
	s.mu.Lock()
	s.messages = append(s.messages, m)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return nil
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

// logger sends the server's error log to t.Log until the sink stops: testing
// forbids logging after a test ends.
type logger struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

func (l *logger) Printf(format string, v ...any) { l.log(fmt.Sprintf(format, v...)) }
func (l *logger) Println(v ...any)               { l.log(fmt.Sprintln(v...)) }

func (l *logger) log(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Log("smtptest: " + strings.TrimSpace(s))
	}
}

func (l *logger) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}

// selfSigned returns a certificate for 127.0.0.1, ::1 and localhost, and a pool
// that trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}
