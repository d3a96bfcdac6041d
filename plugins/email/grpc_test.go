package email_test

import (
	"encoding/json"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/plugins/email"
	"github.com/gatehouse/gatehouse/plugins/email/smtptest"
	"github.com/gatehouse/gatehouse/plugins/sdk"
	"github.com/gatehouse/gatehouse/plugins/sdk/errs"
)

// TestOverGRPC runs the provider as the host sees it: over a real gRPC
// connection, with the host services behind the go-plugin broker.
func TestOverGRPC(t *testing.T) {
	const pass = "grpc-Pa55word"
	sink := smtptest.StartWithAuth(t, "mailer", pass)
	raw, _ := json.Marshal(map[string]any{
		"from": "Acme <no-reply@example.com>", "productName": "Acme", "resetTTL": "15m",
		"smtp": sink.SMTPConfig(),
	})
	p, host := sdk.TestProvider(t, email.New(), sdk.Config{Name: "email", Raw: raw, Secrets: map[string]string{"smtp.password": pass}})
	ctx := t.Context()
	t.Cleanup(func() { checkNoLeak(t, "host log", fmt.Sprint(host.Lines()), pass) })

	info, err := p.Describe(ctx)
	if err != nil || info.Name != "email" || len(info.Capabilities) != 2 {
		t.Errorf("Describe = %+v, %v", info, err)
	}

	req := sdk.MailRequest{UserID: "u1", Email: "ada@example.com", DisplayName: "Ada", Link: verifyLink}
	if err := p.SendVerification(ctx, req); err != nil {
		t.Fatalf("SendVerification: %v", err)
	}
	token := sink.Wait(t, 1, waitMail)[0].Token()
	got, err := p.ConfirmVerification(ctx, token)
	if err != nil || got != (sdk.MailSubject{UserID: "u1", Email: "ada@example.com"}) {
		t.Fatalf("ConfirmVerification = %+v, %v", got, err)
	}
	_, err = p.ConfirmVerification(ctx, token)
	wantKind(t, err, errs.NotFound)
	if msg := errs.MessageOf(err); msg != "link is invalid or has expired" {
		t.Errorf("message = %q", msg)
	}

	req.Link = resetLink
	if err := p.SendPasswordReset(ctx, req); err != nil {
		t.Fatalf("SendPasswordReset: %v", err)
	}
	if err := p.SendPasswordReset(ctx, req); err != nil {
		t.Fatalf("SendPasswordReset: %v", err)
	}
	msgs := sink.Wait(t, 3, waitMail)
	_, err = p.ConfirmPasswordReset(ctx, msgs[1].Token()) // replaced by the newer mail
	wantKind(t, err, errs.NotFound)
	host.Advance(15*time.Minute + time.Second)
	_, err = p.ConfirmPasswordReset(ctx, msgs[2].Token()) // expired
	wantKind(t, err, errs.NotFound)

	wantKind(t, p.SendVerification(ctx, sdk.MailRequest{UserID: "u1", Email: "not an address", Link: verifyLink}), errs.Invalid)
	_, err = p.CheckPassword(ctx, "ada@example.com", "password")
	wantKind(t, err, errs.NotFound)

	lines := host.Lines()
	if len(lines) != 1 || lines[0].Fields["smtp"] != net.JoinHostPort(sink.Host, fmt.Sprint(sink.Port)) {
		t.Errorf("host log = %+v, want the one start-up line", lines)
	}
}

func TestOverGRPCMailServerDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	raw := fmt.Sprintf(`{"from": "a@example.com", "smtp": {"host": "127.0.0.1", "port": %d, "tls": "none"}}`, port)
	p, _ := sdk.TestProvider(t, email.New(), sdk.Config{Name: "email", Raw: json.RawMessage(raw)})
	err = p.SendVerification(t.Context(), sdk.MailRequest{UserID: "u1", Email: "ada@example.com", Link: verifyLink})
	wantKind(t, err, errs.Unavailable)
	if msg := errs.MessageOf(err); msg != "mail server unavailable" {
		t.Errorf("message = %q", msg)
	}
}
