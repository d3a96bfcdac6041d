package email

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"html/template"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	texttemplate "text/template"
	"time"
)

// Purpose says what a mail is for.
type Purpose string

// The purposes of the mails the provider sends.
const (
	PurposeVerification  Purpose = "verification"
	PurposePasswordReset Purpose = "password_reset"
)

// Mail is one message before it is encoded: who sends it to whom, and what it says.
type Mail struct {
	Purpose     Purpose
	From        mail.Address
	To          mail.Address // To.Name greets the user when set
	ProductName string
	Link        string        // the link with its token
	TTL         time.Duration // how long the link lives
	Date        time.Time     // zero: now
}

// Compose returns m as an RFC 5322 message with CRLF line ends: a
// multipart/alternative of text/plain and text/html, both UTF-8 and
// quoted-printable, with Subject, From, To, Date, Message-ID and MIME-Version.
// These are the bytes sent over SMTP or written to the outbox.
func Compose(m Mail) ([]byte, error) {
	m.To.Name = truncate(strings.TrimSpace(stripControl(m.To.Name)), maxNameRunes)
	m.From.Name = strings.TrimSpace(stripControl(m.From.Name))
	if m.Date.IsZero() {
		m.Date = time.Now()
	}
	var text, html bytes.Buffer
	c := content(m)
	if err := textTemplate.Execute(&text, c); err != nil {
		return nil, fmt.Errorf("email: text body: %w", err)
	}
	if err := htmlTemplate.Execute(&html, c); err != nil {
		return nil, fmt.Errorf("email: html body: %w", err)
	}

	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("From", m.From.String())
	header("To", m.To.String())
	header("Subject", mime.QEncoding.Encode("utf-8", c.Subject))
	header("Date", m.Date.Format(time.RFC1123Z))
	header("Message-ID", messageID(m.From.Address))
	header("MIME-Version", "1.0")
	header("Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()}))
	b.WriteString("\r\n")

	for _, part := range []struct {
		contentType string
		body        []byte
	}{
		{"text/plain; charset=utf-8", text.Bytes()},
		{"text/html; charset=utf-8", html.Bytes()},
	} {
		// Plain ASCII with short lines goes as 7bit, so the link stays whole in
		// an .eml file; anything else as quoted-printable.
		enc := "quoted-printable"
		if sevenBit(part.body) {
			enc = "7bit"
		}
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.contentType},
			"Content-Transfer-Encoding": {enc},
		})
		if err != nil {
			return nil, err
		}
		if enc == "7bit" {
			body := strings.ReplaceAll(strings.ReplaceAll(string(part.body), "\r\n", "\n"), "\n", "\r\n")
			if _, err := io.WriteString(w, body); err != nil {
				return nil, err
			}
			continue
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write(part.body); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// sevenBit reports whether b can go as 7bit (RFC 5322 §2.1.1, RFC 2045 §2.7):
// ASCII without NUL or a lone CR, lines of at most 998 octets.
func sevenBit(b []byte) bool {
	line := 0
	for i, c := range b {
		switch {
		case c == 0 || c >= 0x80 || c == '\r' && (i+1 == len(b) || b[i+1] != '\n'):
			return false
		case c == '\n':
			line = 0
		default:
			line++
			if line > 998 {
				return false
			}
		}
	}
	return true
}

// mailContent is what the templates see.
type mailContent struct {
	Subject  string
	Greeting string // "Hello Ada," or "Hello,"
	Intro    string
	Action   string // the button's label
	Link     string
	Validity string // "The link is valid for 24 hours and works once."
	Outro    string
}

func content(m Mail) mailContent {
	c := mailContent{Greeting: "Hello,", Link: m.Link,
		Validity: fmt.Sprintf("The link is valid for %s and works once.", humanDuration(m.TTL))}
	if m.To.Name != "" {
		c.Greeting = "Hello " + m.To.Name + ","
	}
	p := m.ProductName
	switch m.Purpose {
	case PurposePasswordReset:
		c.Subject = "Reset your " + p + " password"
		c.Intro = "We received a request to reset the password of your " + p + " account. To choose a new password, open this link:"
		c.Action = "Choose a new password"
		c.Outro = "If you did not ask for this, ignore this mail: your password stays as it is."
	default:
		c.Subject = "Confirm your email address for " + p
		c.Intro = "Please confirm that this is your email address for " + p + " by opening this link:"
		c.Action = "Confirm my email address"
		c.Outro = "If you did not sign up for " + p + ", ignore this mail: nothing happens without a confirmation."
	}
	return c
}

// textTemplate is plain text: html/template would escape it. Line ends become
// CRLF in the quoted-printable encoder.
var textTemplate = texttemplate.Must(texttemplate.New("text").Parse(`{{.Greeting}}

{{.Intro}}

{{.Link}}

{{.Validity}}

{{.Outro}}
`))

// htmlTemplate escapes every value in its context (the link is an attribute URL).
var htmlTemplate = template.Must(template.New("html").Parse(`<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>{{.Subject}}</title></head>
<body style="font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; line-height: 1.5; color: #222;">
<p>{{.Greeting}}</p>
<p>{{.Intro}}</p>
<p><a href="{{.Link}}" style="display: inline-block; padding: 10px 18px; background: #1f6feb; color: #fff; text-decoration: none; border-radius: 6px;">{{.Action}}</a></p>
<p style="font-size: 90%; color: #555;">If the button does not work, copy this link into your browser:<br>{{.Link}}</p>
<p>{{.Validity}}</p>
<p>{{.Outro}}</p>
</body>
</html>
`))

// messageID returns a new globally unique Message-ID on the sender's domain.
func messageID(from string) string {
	domain := "localhost"
	if at := strings.LastIndexByte(from, '@'); at >= 0 && at < len(from)-1 {
		domain = from[at+1:]
	}
	var r [16]byte
	_, _ = rand.Read(r[:]) // never fails (crypto/rand)
	return "<" + hex.EncodeToString(r[:]) + "@" + domain + ">"
}

// humanDuration writes d for people: "24 hours", "1 hour", "7 days", "30 minutes".
func humanDuration(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	day := 24 * time.Hour
	switch {
	case d >= 2*day && d%day == 0:
		return plural(int64(d/day), "day")
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	case d >= time.Minute:
		return plural(int64(d/time.Minute), "minute") // round down: never promise more
	default:
		return plural(int64(d/time.Second), "second")
	}
}

// maxNameRunes bounds the greeting's name, so that the To header stays within
// the 998-byte line limit of RFC 5322 whatever the name holds.
const maxNameRunes = 100

// truncate returns s cut to at most n runes.
func truncate(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// stripControl removes control characters (line breaks included) from s.
func stripControl(s string) string {
	return strings.Map(func(r rune) rune {
		if isControl(r) || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, s)
}
