package idp

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"strings"

	"github.com/moatmesh/moat/coordinator/passkey"
)

//go:embed web/*.html web/style.css
var webFS embed.FS

var styleCSS = mustRead("web/style.css")

func mustRead(name string) []byte {
	b, err := webFS.ReadFile(name)
	if err != nil {
		panic(err) // unreachable: embedded at build time
	}
	return b
}

func serveCSS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(styleCSS)
}

// pages are the parsed templates, one per page, each with the layout.
type pages struct {
	byName map[string]*template.Template
}

func parsePages() (*pages, error) {
	ps := &pages{byName: map[string]*template.Template{}}
	for _, name := range []string{"login", "totp", "setup", "message"} {
		t, err := template.ParseFS(webFS, "web/layout.html", "web/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse page %s: %w", name, err)
		}
		ps.byName[name] = t
	}
	return ps, nil
}

// view is what every page template sees.
type view struct {
	Name   string // the service
	Prefix string // the issuer's path, for links and form actions
	Title  string

	CSRF          string
	AuthRequestID string
	Email         string
	Errors        map[string]string // by field; "" is the form as a whole
	Message       string

	// Setup.
	Token  string
	Enroll string // the sealed, not yet confirmed TOTP secret
	Secret string
	QR     template.URL

	// Passkeys: a ceremony to run (passkeys.go) and whether it registers
	// or signs in; HasTOTP offers the code form beside it.
	Passkey     *passkey.Ceremony
	PasskeyMode string
	HasTOTP     bool
}

func (p *Provider) render(w http.ResponseWriter, status int, page string, v *view) {
	v.Name, v.Prefix = p.cfg.Name, p.prefix
	var buf bytes.Buffer
	if err := p.pages.byName[page].ExecuteTemplate(&buf, "layout", v); err != nil {
		p.log.Error("idp: render page", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// message renders a page with a title and one sentence.
func (p *Provider) message(w http.ResponseWriter, status int, title, msg string) {
	p.render(w, status, "message", &view{Title: title, Message: msg})
}

// templateURL marks a PNG data: URI made by mfa as safe for an img src;
// anything else becomes an empty URL.
func templateURL(dataURI string) template.URL {
	if !strings.HasPrefix(dataURI, "data:image/png;base64,") {
		return ""
	}
	return template.URL(dataURI)
}
