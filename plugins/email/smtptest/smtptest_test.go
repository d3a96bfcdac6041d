package smtptest_test

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/gatehouse/gatehouse/plugins/email/smtptest"
)

const base64Mail = "From: a@example.com\r\nTo: b@example.com\r\nSubject: =?utf-8?q?H=C3=A9llo?=\r\n" +
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n" +
	"--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n" +
	"--inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
	"T3BlbiBodHRwOi8vbG9jYWxob3N0L3ZlcmlmeT90b2tlbj1hYmMtX\r\nzEyMyBwbGVhc2Uu\r\n" +
	"--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<a href=\"http://localhost/v?x=1&amp;token=html\">x</a>\r\n" +
	"--inner--\r\n--outer--\r\n"

func TestSinkReceivesAndParses(t *testing.T) {
	sink := smtptest.Start(t)
	if err := smtp.SendMail(sink.Addr, nil, "a@example.com", []string{"b@example.com"}, strings.NewReader(base64Mail)); err == nil {
		t.Fatal("SendMail insists on STARTTLS; the plain sink should not offer it")
	}
	c, err := smtp.Dial(sink.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("a@example.com", []string{"b@example.com", "c@example.com"}, strings.NewReader(base64Mail)); err != nil {
		t.Fatal(err)
	}
	c.Quit()

	m := sink.WaitFor(t, "c@example.com", 5*time.Second)
	if m.From != "a@example.com" || len(m.To) != 2 || m.Subject != "Héllo" {
		t.Errorf("From %q To %q Subject %q", m.From, m.To, m.Subject)
	}
	if m.Text != "Open http://localhost/verify?token=abc-_123 please." {
		t.Errorf("Text = %q", m.Text)
	}
	if m.Link() != "http://localhost/verify?token=abc-_123" || m.Token() != "abc-_123" {
		t.Errorf("Link %q Token %q", m.Link(), m.Token())
	}
	m.Text = ""
	if m.Link() != "http://localhost/v?x=1&token=html" {
		t.Errorf("Link from HTML = %q", m.Link())
	}
	if len(sink.Messages()) != 1 {
		t.Errorf("%d messages", len(sink.Messages()))
	}
	sink.Reset()
	if len(sink.Messages()) != 0 {
		t.Error("Reset kept messages")
	}
}

func TestSinkAuth(t *testing.T) {
	sink := smtptest.StartWithAuth(t, "user", "pass")
	send := func(pass string) error {
		c, err := smtp.Dial(sink.Addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if pass != "" {
			if err := c.Auth(sasl.NewPlainClient("", "user", pass)); err != nil {
				return err
			}
		}
		return c.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader(base64Mail))
	}
	if err := send(""); err == nil {
		t.Error("accepted mail without AUTH")
	}
	if err := send("wrong"); err == nil {
		t.Error("accepted a wrong password")
	}
	if err := send("pass"); err != nil {
		t.Errorf("right password: %v", err)
	}
	if n := len(sink.Wait(t, 1, 5*time.Second)); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}

func TestSinkTLS(t *testing.T) {
	sink := smtptest.StartWith(t, smtptest.Options{TLS: "starttls"})
	c, err := smtp.DialStartTLS(sink.Addr, &tls.Config{RootCAs: sink.RootCAs})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader(base64Mail)); err != nil {
		t.Fatal(err)
	}
	sink.Wait(t, 1, 5*time.Second)
}
