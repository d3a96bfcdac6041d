package email_test

import (
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/plugins/email"
	"github.com/gatehouse/gatehouse/plugins/email/smtptest"
)

// TestComposeKeepsLinksWhole: an ASCII mail goes as 7bit, so the link stays on
// one line of the raw message (an operator can copy it from an outbox file); a
// name outside ASCII makes the part quoted-printable, which still decodes to the
// same link.
func TestComposeKeepsLinksWhole(t *testing.T) {
	link := "https://auth.example.test/auth/providers/email/verify?token=" + strings.Repeat("A", 43)
	for _, name := range []string{"Ada", "Zoë"} {
		raw, err := email.Compose(email.Mail{Purpose: email.PurposeVerification, From: mail.Address{Address: "no-reply@example.test"},
			To: mail.Address{Name: name, Address: "ada@example.test"}, ProductName: "Gatehouse", Link: link, TTL: time.Hour, Date: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		m, err := smtptest.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if m.Link() != link || !strings.Contains(m.Text, name) {
			t.Errorf("%s: decoded link %q", name, m.Link())
		}
		whole := strings.Contains(string(raw), link)
		if ascii := name == "Ada"; whole != ascii {
			t.Errorf("%s: link whole in the raw mail = %v, want %v", name, whole, ascii)
		}
		if strings.Contains(strings.ReplaceAll(string(raw), "\r\n", ""), "\n") {
			t.Errorf("%s: a bare LF in the raw mail", name)
		}
	}
}
