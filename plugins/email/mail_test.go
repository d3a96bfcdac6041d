package email_test

import (
	"bytes"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/plugins/email"
	"github.com/gatehouse/gatehouse/plugins/email/smtptest"
)

func TestCompose(t *testing.T) {
	link := verifyLink + "AbC-_x"
	date := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tc := range []struct {
		name        string
		purpose     email.Purpose
		displayName string
		wantSubject string
		wantGreet   string
		want        []string
	}{
		{"verification", email.PurposeVerification, "", "Confirm your email address for Ünïcode Co",
			"Hello,", []string{"24 hours", "works once"}},
		{"reset", email.PurposePasswordReset, "Zoë \"Z\" <script>\r\nBcc: eve@example.com", "Reset your Ünïcode Co password",
			"Hello Zoë \"Z\" <script>Bcc: eve@example.com,", []string{"If you did not ask for this, ignore this mail", "24 hours"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := email.Compose(email.Mail{
				Purpose:     tc.purpose,
				From:        mail.Address{Name: "Gatehouse", Address: "no-reply@example.com"},
				To:          mail.Address{Name: tc.displayName, Address: "zoe@example.com"},
				ProductName: "Ünïcode Co",
				Link:        link,
				TTL:         24 * time.Hour,
				Date:        date,
			})
			if err != nil {
				t.Fatal(err)
			}
			head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
			if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
				t.Error("bare LF in the message")
			}
			for _, line := range strings.Split(string(raw), "\r\n") {
				if len(line) > 998 {
					t.Errorf("line of %d bytes", len(line))
				}
				for _, c := range []byte(line) {
					if c >= 0x80 {
						t.Fatalf("8-bit byte in %q", line)
					}
				}
			}
			if bytes.Count(head, []byte("\nBcc:")) != 0 || bytes.HasPrefix(head, []byte("Bcc:")) {
				t.Errorf("header injection:\n%s", head)
			}

			m, err := smtptest.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject != tc.wantSubject {
				t.Errorf("Subject = %q, want %q", m.Subject, tc.wantSubject)
			}
			if d, err := m.Header.Date(); err != nil || !d.Equal(date) {
				t.Errorf("Date = %v, %v", d, err)
			}
			if id := m.Header.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@example.com>") {
				t.Errorf("Message-ID = %q", id)
			}
			if v := m.Header.Get("MIME-Version"); v != "1.0" {
				t.Errorf("MIME-Version = %q", v)
			}
			to, err := m.Header.AddressList("To")
			if err != nil || len(to) != 1 || to[0].Address != "zoe@example.com" {
				t.Errorf("To = %v, %v", to, err)
			}
			if !strings.HasPrefix(m.Text, tc.wantGreet+"\n") {
				t.Errorf("text starts %q, want %q", m.Text[:min(len(m.Text), 60)], tc.wantGreet)
			}
			for _, want := range append(tc.want, link) {
				if !strings.Contains(m.Text, want) {
					t.Errorf("text lacks %q:\n%s", want, m.Text)
				}
			}
			if strings.Contains(m.HTML, "<script>") {
				t.Errorf("html does not escape the name:\n%s", m.HTML)
			}
			if m.Link() != link || m.Token() != "AbC-_x" {
				t.Errorf("Link() = %q, Token() = %q", m.Link(), m.Token())
			}
		})
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		24 * time.Hour:     "24 hours",
		time.Hour:          "1 hour",
		7 * 24 * time.Hour: "7 days",
		48 * time.Hour:     "2 days",
		90 * time.Minute:   "90 minutes",
		time.Minute:        "1 minute",
		89 * time.Second:   "1 minute",
		30 * time.Second:   "30 seconds",
	} {
		if got := email.HumanDuration(d); got != want {
			t.Errorf("HumanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestComposeLongName(t *testing.T) {
	raw, err := email.Compose(email.Mail{
		From: mail.Address{Address: "no-reply@example.com"},
		To:   mail.Address{Name: strings.Repeat("Ω\"", 5000), Address: "zoe@example.com"},
		Link: verifyLink + "x", TTL: time.Hour, ProductName: "Acme",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 998 {
			t.Fatalf("line of %d bytes", len(line))
		}
	}
	if _, err := smtptest.Parse(raw); err != nil {
		t.Fatal(err)
	}
}
