package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"text/template"
	"time"

	"github.com/gatehouse/gatehouse/plugins/github/githubtest"
	"github.com/gatehouse/gatehouse/plugins/oidc/oidctest"
)

const devUsage = `usage: gatehouse dev fake-providers [flags]

Runs a fake Google (OpenID Connect) and a fake GitHub on this machine, with
a user each, and a small app page that receives a sign-in's code and trades it
for a session, so a whole Google or GitHub sign-in can be tried without an
account anywhere. It prints the settings that point Gatehouse at them; start
Gatehouse with those in another terminal. Stop with Ctrl-C. For development
only: the fakes approve whoever asks.

flags:
`

// devUsers are the fake providers' accounts.
var (
	devGoogleUser = oidctest.User{Subject: "100000000000000000001", Email: "ada@example.test", EmailVerified: true,
		Name: "Ada Lovelace", GivenName: "Ada", FamilyName: "Lovelace"}
	devGitHubUser = githubtest.User{ID: 583231, Login: "octocat", Name: "The Octocat",
		Emails: []githubtest.Email{{Email: "octocat@example.test", Primary: true, Verified: true}}}
)

// runDev runs `gatehouse dev SUBCOMMAND`.
func runDev(ctx context.Context, args []string, e cliEnv) int {
	if len(args) == 0 || args[0] != "fake-providers" {
		fmt.Fprint(e.stderr, devUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("gatehouse dev fake-providers", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), devUsage)
		fs.PrintDefaults()
	}
	googleAddr := fs.String("google-addr", "127.0.0.1:9011", "the fake Google's listen `address`")
	githubAddr := fs.String("github-addr", "127.0.0.1:9012", "the fake GitHub's listen `address`")
	appAddr := fs.String("app-addr", "127.0.0.1:9013", "the app page's listen `address`")
	gatehouse := fs.String("gatehouse-url", "http://localhost:8080", "Gatehouse's public `URL`, where the app page trades codes for sessions")
	ask := fs.Bool("ask", false, "show a consent page with Approve and Deny (for a browser) instead of approving at once")
	pos, code := parseCLIArgs(fs, args[1:])
	if code >= 0 {
		return code
	}
	if len(pos) > 0 {
		return usageError(fs, "fake-providers takes no argument")
	}
	var lns [3]net.Listener
	for i, addr := range []string{*googleAddr, *githubAddr, *appAddr} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range lns[:i] {
				l.Close()
			}
			fmt.Fprintf(e.stderr, "gatehouse dev: %v\n", err)
			return exitFail
		}
		lns[i] = ln
	}
	google := oidctest.New(oidctest.Options{Listener: lns[0], Interactive: *ask, ClientID: "fake-google-client", ClientSecret: "fake-google-secret"})
	defer google.Close()
	google.AddUser(devGoogleUser)
	gh := githubtest.New(githubtest.Options{Listener: lns[1], Interactive: *ask, ClientID: "fake-github-client", ClientSecret: "fake-github-secret"})
	defer gh.Close()
	gh.AddUser(devGitHubUser)
	appURL := "http://" + lns[2].Addr().String()
	app := &http.Server{Handler: devApp(strings.TrimSuffix(*gatehouse, "/")), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = app.Serve(lns[2]) }()
	defer app.Close()

	fmt.Fprint(e.stdout, devInstructions(google, gh, appURL, strings.TrimSuffix(*gatehouse, "/")))
	<-ctx.Done()
	return exitOK
}

// devInstructions tells how to point Gatehouse at the fakes and sign in.
func devInstructions(google *oidctest.Server, gh *githubtest.Server, appURL, gatehouse string) string {
	plugins, _ := json.Marshal([]map[string]any{
		{"name": "email", "builtin": "email"},
		{"name": "google", "builtin": "google", "config": map[string]any{
			"clientId": google.ClientID, "clientSecretEnv": "FAKE_GOOGLE_SECRET", "issuer": google.Issuer}},
		{"name": "github", "builtin": "github", "config": map[string]any{
			"clientId": gh.ClientID, "clientSecretEnv": "FAKE_GITHUB_SECRET",
			"authURL": gh.AuthURL(), "tokenURL": gh.TokenURL(), "apiURL": gh.APIURL()}},
	})
	signedIn := appURL + "/signed-in"
	var b strings.Builder
	fmt.Fprintf(&b, "Fake Google (OpenID Connect) at %s, user %s.\n", google.URL, devGoogleUser.Email)
	fmt.Fprintf(&b, "Fake GitHub at %s, user %s.\n", gh.URL, devGitHubUser.Login)
	fmt.Fprintf(&b, "App page at %s: it trades a sign-in's code for a session at %s.\n\n", signedIn, gatehouse)
	fmt.Fprint(&b, "Start Gatehouse against them in another terminal:\n\n")
	fmt.Fprintf(&b, "  export FAKE_GOOGLE_SECRET=%s FAKE_GITHUB_SECRET=%s\n", shellQuote(google.ClientSecret), shellQuote(gh.ClientSecret))
	fmt.Fprintf(&b, "  export GATEHOUSE_AUTH_REDIRECT_URIS=%s\n", shellQuote(signedIn))
	fmt.Fprintf(&b, "  export GATEHOUSE_PLUGINS=%s\n", shellQuote(string(plugins)))
	fmt.Fprint(&b, "  go run ./cmd/gatehouse\n\n")
	fmt.Fprint(&b, "Then sign in, in a browser or with curl:\n\n")
	for _, p := range []string{"google", "github"} {
		start := gatehouse + "/auth/providers/" + p + "/start?" + url.Values{"redirect_uri": {signedIn}, "state": {p}}.Encode()
		fmt.Fprintf(&b, "  curl -sL -c /tmp/gatehouse-jar -b /tmp/gatehouse-jar '%s'\n", start)
	}
	fmt.Fprintf(&b, "\nWith a session's token, link an account (an integration) the same way:\n\n")
	fmt.Fprintf(&b, "  curl -s -X POST %s/users/me/integrations/github -H \"Authorization: Bearer $TOKEN\" -d '{\"callback_url\":\"%s\"}'\n", gatehouse, signedIn)
	fmt.Fprint(&b, "  curl -sL URL    # the url it answered\n")
	fmt.Fprint(&b, "\nStop with Ctrl-C.\n")
	return b.String()
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// devPage is what the app page shows: the session a sign-in gave, or why
// there is none.
var devPage = template.Must(template.New("app").Parse(`Signed in with {{.Provider}}.
POST {{.Gatehouse}}/auth/tokens {"provider":"{{.Provider}}","code":"…"} answered {{.Status}}:
{{.Answer}}
GET {{.Gatehouse}}/users/me with that token answered:
{{.Me}}
`))

// devApp is the app a sign-in returns to: it trades the code (the provider's
// name comes back as the app's state) for a session and shows what
// Gatehouse says of it.
func devApp(gatehouse string) http.Handler {
	client := &http.Client{Timeout: 10 * time.Second}
	call := func(req *http.Request) (int, string, error) {
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		return resp.StatusCode, strings.TrimSpace(string(b)), err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /signed-in", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		q := r.URL.Query()
		if q.Get("connector") != "" {
			fmt.Fprintf(w, "Linked the %s account %s.\n", q.Get("connector"), q.Get("user_identifier"))
			return
		}
		if q.Get("error") != "" || q.Get("code") == "" {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, "Not signed in: error=%s\n", q.Get("error"))
			return
		}
		provider := q.Get("state")
		body, _ := json.Marshal(map[string]string{"provider": provider, "code": q.Get("code")})
		req, _ := http.NewRequestWithContext(r.Context(), "POST", gatehouse+"/auth/tokens", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		status, answer, err := call(req)
		if err != nil {
			http.Error(w, "Gatehouse cannot be reached: "+err.Error(), http.StatusBadGateway)
			return
		}
		var tok struct{ Token string }
		me := "(no session)"
		if json.Unmarshal([]byte(answer), &tok) == nil && tok.Token != "" {
			req, _ := http.NewRequestWithContext(r.Context(), "GET", gatehouse+"/users/me", nil)
			req.Header.Set("Authorization", "Bearer "+tok.Token)
			if _, m, err := call(req); err == nil {
				me = m
			} else if !errors.Is(err, context.Canceled) {
				me = err.Error()
			}
		}
		_ = devPage.Execute(w, map[string]any{"Provider": provider, "Gatehouse": gatehouse, "Status": status, "Answer": answer, "Me": me})
	})
	return mux
}
