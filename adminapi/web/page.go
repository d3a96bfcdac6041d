package web

import (
	"embed"
	"html/template"
	"net/http"

	"github.com/gatehouse/gatehouse/core"
)

//go:embed pages/page.html
var pageFS embed.FS

var pageTmpl = template.Must(template.ParseFS(pageFS, "pages/page.html"))

// Page is what the one HTML page of every surface shows (the pages a mail
// link or a browser flow opens): a message, or a form that POSTs a token (so
// a mail scanner that fetches a link spends nothing).
type Page struct {
	Title, Message string
	Error          bool
	Form           bool
	Action, Token  string
	Password       bool // the form asks for a new password
	Button         string
}

// WritePage answers p as an HTML page that no cache keeps, no frame holds,
// and whose URL (which may hold a token) no Referer carries away.
func WritePage(w http.ResponseWriter, status int, p Page) error {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, p) // a failed write means the client went away
	return nil
}

// PageShape writes failures as a page titled title, for the routes a
// browser opens: the client-safe message, never an internal one.
func PageShape(title string) Shape {
	return func(w http.ResponseWriter, _ *http.Request, f Failure) {
		msg := f.Detail
		if f.Kind == core.Internal || msg == "" {
			msg = "Something went wrong. Please try again later."
		}
		_ = WritePage(w, f.Status, Page{Title: title, Message: msg, Error: true})
	}
}
