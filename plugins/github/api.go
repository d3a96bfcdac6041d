package github

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/plugins/sdk"
	"github.com/gatehouse/gatehouse/plugins/sdk/errs"
)

// apiVersion is the REST API version the plugin is written against.
const apiVersion = "2022-11-28"

// maxBody bounds what the plugin reads of any GitHub answer.
const maxBody = 1 << 20

// newClient returns the HTTP client of every call to GitHub.
func newClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: headers{http.DefaultTransport}}
}

// headers sets what every request to GitHub needs: a User-Agent (the API
// refuses requests without one) and, unless the request chose, Accept:
// application/json, which makes the token endpoint answer JSON rather than a
// form-encoded body.
type headers struct{ next http.RoundTripper }

func (h headers) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", "Gatehouse-GitHub/"+Version)
	if r.Header.Get("Accept") == "" {
		r.Header.Set("Accept", "application/json")
	}
	return h.next.RoundTrip(r)
}

// exchange redeems an authorization code at the token endpoint.
func (st *state) exchange(ctx context.Context, op string, req sdk.ExchangeRequest) (*oauth2.Token, error) {
	var problems []errs.FieldError
	if req.Code == "" || len(req.Code) > 512 || hasControl(req.Code) {
		problems = append(problems, errs.FieldError{Field: "code", Detail: "must be 1 to 512 printable bytes"})
	}
	if !isVerifier(req.CodeVerifier) {
		problems = append(problems, errs.FieldError{Field: "codeVerifier", Detail: "must be a PKCE verifier: 43 to 128 unreserved characters"})
	}
	if !isHTTPURL(req.RedirectURI) {
		problems = append(problems, errs.FieldError{Field: "redirectUri", Detail: "must be an absolute http(s) URL"})
	}
	if len(problems) > 0 {
		return nil, errs.InvalidFields(op, problems...)
	}
	tok, err := st.oauth(req.RedirectURI, nil).Exchange(ctx, req.Code, oauth2.VerifierOption(req.CodeVerifier))
	if err != nil {
		return nil, st.tokenError(ctx, op, err, req.RedirectURI)
	}
	return tok, nil
}

// refresh redeems a refresh token at the token endpoint.
func (st *state) refresh(ctx context.Context, op, refreshToken string) (*oauth2.Token, error) {
	if refreshToken == "" {
		return nil, errs.Errorf(errs.Unauthorized, op,
			"no refresh token: GitHub OAuth app tokens cannot be refreshed; connect the account again")
	}
	tok, err := st.oauth("", nil).TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return nil, st.tokenError(ctx, op, err, "")
	}
	return tok, nil
}

// codePattern is what an error code of GitHub's looks like; anything else is
// not repeated in a message.
var codePattern = regexp.MustCompile(`^[a-z_]{1,64}$`)

// tokenError turns a failure of the token endpoint into an error of the right
// kind. GitHub answers its errors with HTTP 200 and an "error" field, which
// x/oauth2 reports as a RetrieveError.
func (st *state) tokenError(ctx context.Context, op string, err error, redirectURI string) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return unreachable(ctx, op, err)
	}
	switch re.ErrorCode {
	case "bad_verification_code", "invalid_grant":
		return &errs.Error{Kind: errs.Unauthorized, Op: op, Msg: "the authorization code was refused", Err: err}
	case "bad_refresh_token":
		return &errs.Error{Kind: errs.Unauthorized, Op: op,
			Msg: "GitHub refused the refresh token: connect the account again", Err: err}
	case "unverified_user_email":
		return &errs.Error{Kind: errs.Forbidden, Op: op,
			Msg: "GitHub refuses this account until its email address is verified at GitHub", Err: err}
	case "incorrect_client_credentials":
		return &errs.Error{Kind: errs.Unavailable, Op: op, Err: err, Msg: fmt.Sprintf(
			"GitHub refused the client credentials: check clientId and clientSecretEnv of plugin %q", st.name)}
	case "redirect_uri_mismatch":
		return &errs.Error{Kind: errs.Unavailable, Op: op, Err: err, Msg: fmt.Sprintf(
			"GitHub refused the redirect URI %s: it must be the authorization callback URL of the OAuth app of plugin %q",
			redirectURI, st.name)}
	case "":
		if re.Response != nil && (re.Response.StatusCode == http.StatusTooManyRequests || rateLimited(re.Response)) {
			return rateLimit(op, re.Response, err)
		}
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		return &errs.Error{Kind: errs.Unavailable, Op: op, Err: err,
			Msg: fmt.Sprintf("GitHub's token endpoint answered HTTP %d", status)}
	}
	code := "an unknown error"
	if codePattern.MatchString(re.ErrorCode) {
		code = re.ErrorCode
	}
	return &errs.Error{Kind: errs.Unavailable, Op: op, Err: err,
		Msg: fmt.Sprintf("GitHub refused the token request with %s (plugin %q)", code, st.name)}
}

// unreachable reports a request that got no usable answer: a network error, a
// timeout, an answer that is not GitHub's.
func unreachable(ctx context.Context, op string, err error) error {
	msg := "GitHub cannot be reached"
	var ue *url.Error
	isURL := errors.As(err, &ue)
	// The call's deadline and the client's own timeout race: either is a
	// GitHub too slow to answer.
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || (isURL && ue.Timeout()) {
		msg = "GitHub did not answer in time"
	}
	if !isURL && !errors.Is(err, context.DeadlineExceeded) {
		msg = "GitHub's answer could not be read"
	}
	return &errs.Error{Kind: errs.Unavailable, Op: op, Msg: msg, Err: err}
}

// rateLimited reports whether GitHub refused a request for its rate limit:
// 403 with no requests remaining (a 429 says so itself).
func rateLimited(r *http.Response) bool {
	return r.StatusCode == http.StatusForbidden && r.Header.Get("X-RateLimit-Remaining") == "0"
}

// rateLimit returns RateLimited with the wait GitHub asks for: Retry-After in
// seconds, or until X-RateLimit-Reset (Unix seconds); a minute if neither.
func rateLimit(op string, r *http.Response, err error) error {
	wait := time.Minute
	if s, e := strconv.Atoi(r.Header.Get("Retry-After")); e == nil && s > 0 {
		wait = time.Duration(s) * time.Second
	} else if t, e := strconv.ParseInt(r.Header.Get("X-RateLimit-Reset"), 10, 64); e == nil {
		if d := time.Until(time.Unix(t, 0)); d > 0 {
			wait = d.Round(time.Second) + time.Second
		}
	}
	return &errs.Error{Kind: errs.RateLimited, Op: op, Msg: "GitHub's rate limit is reached; try again later",
		RetryAfter: wait, Err: err}
}

// apiError is GitHub's error body: {"message": ..., "documentation_url": ...}.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("GitHub API: HTTP %d: %s", e.Status, e.Message) }

// call sends one REST API request and decodes a 2xx answer's body into out
// (nil: the body is dropped). A non-2xx answer is an *apiError, rate limits
// aside; no answer, or an unreadable one, is Unavailable.
func (st *state) call(ctx context.Context, op string, req *http.Request, out any) error {
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", apiVersion)
	resp, err := st.client.Do(req)
	if err != nil {
		return unreachable(ctx, op, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return unreachable(ctx, op, err)
	}
	if resp.StatusCode == http.StatusTooManyRequests || rateLimited(resp) {
		return rateLimit(op, resp, fmt.Errorf("GitHub API: HTTP %d", resp.StatusCode))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &e)
		return &apiError{Status: resp.StatusCode, Message: e.Message}
	}
	if out == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // RawClaims keep GitHub's numbers exactly
	if err := dec.Decode(out); err != nil {
		return &errs.Error{Kind: errs.Unavailable, Op: op, Msg: "GitHub's answer could not be read", Err: err}
	}
	return nil
}

// apiFailure turns an *apiError of a request made with a token just issued
// into Unavailable: none of it is the user's doing.
func apiFailure(op, what string, err error) error {
	var ae *apiError
	if !errors.As(err, &ae) {
		return err
	}
	return &errs.Error{Kind: errs.Unavailable, Op: op, Err: err,
		Msg: fmt.Sprintf("GitHub answered %s with HTTP %d", what, ae.Status)}
}

// githubUser is the part of GET /user the plugin reads; raw keeps all of it.
type githubUser struct {
	ID        json.Number `json:"id"`
	Login     string      `json:"login"`
	Name      string      `json:"name"`
	AvatarURL string      `json:"avatar_url"`
	Email     string      `json:"email"` // the public profile address, may be empty
	raw       map[string]any
}

// user reads GET /user with the token.
func (st *state) user(ctx context.Context, op, token string) (githubUser, error) {
	req, err := st.apiRequest(ctx, http.MethodGet, "/user", token, nil)
	if err != nil {
		return githubUser{}, err
	}
	var raw map[string]any
	if err := st.call(ctx, op, req, &raw); err != nil {
		return githubUser{}, apiFailure(op, "GET /user", err)
	}
	var u githubUser
	b, _ := json.Marshal(raw) // cannot fail: it was just decoded
	if err := json.Unmarshal(b, &u); err != nil {
		return githubUser{}, &errs.Error{Kind: errs.Unavailable, Op: op, Msg: "GitHub's /user answer could not be read", Err: err}
	}
	id, err := strconv.ParseInt(u.ID.String(), 10, 64)
	if err != nil || id <= 0 || u.Login == "" {
		return githubUser{}, errs.Errorf(errs.Unavailable, op, "GitHub's /user answer has no numeric id or no login")
	}
	u.ID = json.Number(strconv.FormatInt(id, 10))
	u.raw = raw
	return u, nil
}

// githubEmail is one entry of GET /user/emails.
type githubEmail struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

// emails reads GET /user/emails with the token. A token without the
// user:email scope (or a GitHub App without the email permission) gets 404 or
// 403: then there are no addresses, and a warning says why.
func (st *state) emails(ctx context.Context, op, token string) ([]githubEmail, error) {
	req, err := st.apiRequest(ctx, http.MethodGet, "/user/emails", token, nil)
	if err != nil {
		return nil, err
	}
	var list []githubEmail
	err = st.call(ctx, op, req, &list)
	var ae *apiError
	if errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusForbidden) {
		st.log.Log(ctx, "warn", "github: /user/emails cannot be read with the granted scopes (user:email is needed): "+
			"the profile's public address is used, unverified", map[string]string{"status": strconv.Itoa(ae.Status)})
		return nil, nil
	}
	if err != nil {
		return nil, apiFailure(op, "GET /user/emails", err)
	}
	return list, nil
}

// deleteGrant deletes the grant of the app that holds access: every token
// of the app for that user stops working.
func (st *state) deleteGrant(ctx context.Context, op, access string) error {
	body, _ := json.Marshal(map[string]string{"access_token": access}) // cannot fail
	req, err := st.apiRequest(ctx, http.MethodDelete, "/applications/"+url.PathEscape(st.cfg.ClientID)+"/grant", "", body)
	if err != nil {
		return err
	}
	req.SetBasicAuth(st.cfg.ClientID, st.secret)
	req.Header.Set("Content-Type", "application/json")
	err = st.call(ctx, op, req, nil)
	var ae *apiError
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &ae):
		return err
	case ae.Status == http.StatusNotFound || ae.Status == http.StatusUnprocessableEntity:
		return nil // GitHub no longer knows the token: the grant is gone already
	case ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden:
		return &errs.Error{Kind: errs.Unavailable, Op: op, Err: err, Msg: fmt.Sprintf(
			"GitHub refused the client credentials: check clientId and clientSecretEnv of plugin %q", st.name)}
	default:
		return apiFailure(op, "DELETE /applications/{client_id}/grant", err)
	}
}

// apiRequest builds a request to apiURL + path, with the token when given.
func (st *state) apiRequest(ctx context.Context, method, path, token string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, st.cfg.APIURL+path, bytes.NewReader(body))
	if err != nil { // apiURL was validated: only a bug gets here
		return nil, &errs.Error{Kind: errs.Internal, Op: "github.apiRequest", Err: err}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, nil
}

// identity maps the user and their addresses to the host's identity.
func (u githubUser) identity(provider string, emails []githubEmail) sdk.Identity {
	id := sdk.Identity{Provider: provider, Subject: u.ID.String(), Username: u.Login,
		DisplayName: u.displayName(), AvatarURL: u.AvatarURL, RawClaims: u.raw}
	if parts := strings.Fields(u.Name); len(parts) >= 2 {
		id.GivenName = parts[0]
		id.FamilyName = strings.Join(parts[1:], " ")
	}
	id.Email, id.EmailVerified = pickEmail(emails)
	if id.Email == "" && emails == nil {
		id.Email = u.Email // the public address: GitHub does not say it is verified
	}
	return id
}

// pickEmail returns the primary address and whether it is verified; without
// a primary, the first verified address.
func pickEmail(emails []githubEmail) (string, bool) {
	for _, e := range emails {
		if e.Primary && e.Email != "" {
			return e.Email, e.Verified
		}
	}
	for _, e := range emails {
		if e.Verified && e.Email != "" {
			return e.Email, true
		}
	}
	return "", false
}

func (u githubUser) displayName() string {
	if n := strings.TrimSpace(u.Name); n != "" {
		return n
	}
	return u.Login
}
