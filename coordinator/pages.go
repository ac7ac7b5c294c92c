package coordinator

import (
	"crypto/hmac"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"html/template"
	"net/http"

	"github.com/gin-gonic/gin"
)

//go:embed pages/*.html pages/login.css
var pageFS embed.FS

var pages = template.Must(template.ParseFS(pageFS, "pages/*.html"))

// pageCSP forbids everything the sign-in pages do not use: styles,
// images (QR codes as data: URIs) and one script (the passkey ceremony,
// /static/passkey.js) from the coordinator, nothing inline.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// render writes a sign-in page. Every value is escaped by html/template.
func render(c *gin.Context, status int, name string, data map[string]any) {
	c.Header("Content-Security-Policy", pageCSP)
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Status(status)
	if err := pages.ExecuteTemplate(c.Writer, name, data); err != nil {
		c.Error(err)
	}
}

func renderError(c *gin.Context, status int, msg string) {
	render(c, status, "error.html", map[string]any{"Title": "Sign-in stopped", "Message": msg})
	c.Abort()
}

const csrfCookie = "moat_csrf"

// cookieName is the name a cookie called base goes by. Over https it
// carries a prefix the browser enforces, so that no other host under the
// same domain can plant or overwrite it: "__Host-" for a cookie on Path=/
// (root), "__Secure-" for one on a narrower path.
func cookieName(base string, secure, root bool) string {
	switch {
	case !secure:
		return base
	case root:
		return "__Host-" + base
	}
	return "__Secure-" + base
}

// csrfToken returns the browser's CSRF token (double-submit cookie),
// setting a new one when it has none.
func csrfToken(c *gin.Context, secure bool) string {
	name := cookieName(csrfCookie, secure, true)
	if ck, err := c.Request.Cookie(name); err == nil && len(ck.Value) >= 32 {
		return ck.Value
	}
	var b [24]byte
	rand.Read(b[:])
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(c.Writer, &http.Cookie{Name: name, Value: tok, Path: "/", HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode})
	return tok
}

// csrfOK checks a form post's token against the cookie in constant time.
func csrfOK(c *gin.Context, secure bool) bool {
	ck, err := c.Request.Cookie(cookieName(csrfCookie, secure, true))
	if err != nil || len(ck.Value) < 32 {
		return false
	}
	return hmac.Equal([]byte(ck.Value), []byte(c.PostForm("csrf")))
}

func serveLoginCSS(c *gin.Context) {
	b, _ := pageFS.ReadFile("pages/login.css")
	c.Header("Cache-Control", "public, max-age=3600")
	c.Data(http.StatusOK, "text/css; charset=utf-8", b)
}
