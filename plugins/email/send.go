package email

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// sender delivers one composed message. Errors are causes for the host's log:
// they hold no password, token, link or recipient address.
type sender interface {
	send(ctx context.Context, from, to string, msg []byte, secrets ...string) error
	// where says where mail goes, for the start-up line.
	where() map[string]string
}

// smtpSender sends through an SMTP server with go-smtp's client.
type smtpSender struct {
	host     string
	port     int
	mode     string // TLSStartTLS, TLSImplicit or TLSNone
	username string
	password string
	timeout  time.Duration
	rootCAs  *x509.CertPool // nil: the system's
}

func (s *smtpSender) addr() string { return net.JoinHostPort(s.host, strconv.Itoa(s.port)) }

func (s *smtpSender) where() map[string]string {
	return map[string]string{"smtp": s.addr(), "tls": s.mode}
}

// send runs one SMTP conversation, bounded by s.timeout and ctx: when either
// ends, the connection is closed under the client, which fails the current step.
func (s *smtpSender) send(ctx context.Context, from, to string, msg []byte, secrets ...string) (err error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	step := "dial"
	defer func() {
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (%v)", err, ctx.Err())
			}
			secrets = append(secrets, s.password, to)
			err = errors.New(redact(fmt.Sprintf("smtp %s: %s: %v", s.addr(), step, err), secrets...))
		}
	}()

	tlsConfig := &tls.Config{ServerName: s.host, RootCAs: s.rootCAs, MinVersion: tls.VersionTLS12}
	dialer := &net.Dialer{Timeout: s.timeout}
	var conn net.Conn
	if s.mode == TLSImplicit {
		conn, err = (&tls.Dialer{NetDialer: dialer, Config: tlsConfig}).DialContext(ctx, "tcp", s.addr())
	} else {
		conn, err = dialer.DialContext(ctx, "tcp", s.addr())
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var c *smtp.Client
	if s.mode == TLSStartTLS {
		// Refuses to go on in clear when the server does not offer STARTTLS.
		step = "starttls"
		if c, err = smtp.NewClientStartTLS(conn, tlsConfig); err != nil {
			return err
		}
	} else {
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	c.CommandTimeout, c.SubmissionTimeout = s.timeout, s.timeout

	if s.username != "" {
		step = "auth"
		if _, isTLS := c.TLSConnectionState(); !isTLS && !isLoopback(s.host) {
			return errors.New("refusing AUTH in clear to a remote server") // Validate forbids it too
		}
		if !c.SupportsAuth(sasl.Plain) {
			return errors.New("server does not offer AUTH PLAIN")
		}
		if err = c.Auth(sasl.NewPlainClient("", s.username, s.password)); err != nil {
			return err
		}
	}
	step = "send"
	if err = c.SendMail(from, []string{to}, bytes.NewReader(msg)); err != nil {
		return err
	}
	_ = c.Quit() // the server has accepted the message: a failed QUIT changes nothing
	return nil
}

// redact replaces every non-empty secret in s.
func redact(s string, secrets ...string) string {
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}

// outbox writes each message as one .eml file in a folder (mode 0700), for
// development without a mail server.
type outbox struct {
	dir string // absolute
}

// newOutbox creates dir with mode 0700, or narrows an existing folder to 0700:
// the files hold working links.
func newOutbox(dir string) (*outbox, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a folder", abs)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(abs, 0o700); err != nil {
			return nil, err
		}
	}
	return &outbox{dir: abs}, nil
}

func (o *outbox) where() map[string]string { return map[string]string{"outbox": o.dir} }

// send writes msg to <time>-<random>.eml, mode 0600. It writes a hidden
// temporary file first and renames it, so a reader never sees half a message.
func (o *outbox) send(_ context.Context, _, _ string, msg []byte, _ ...string) error {
	var r [6]byte
	_, _ = rand.Read(r[:]) // never fails (crypto/rand)
	name := time.Now().UTC().Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(r[:]) + ".eml"
	tmp, err := os.CreateTemp(o.dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(msg); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(o.dir, name))
}
