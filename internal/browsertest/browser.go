// Package browsertest drives moat's server-rendered pages headlessly in
// tests, the way a person's browser would: it keeps cookies, follows
// redirects, and submits forms with their hidden fields (CSRF tokens
// included). It is a test helper; the real-browser checks of the UI use
// Chromium.
package browsertest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"golang.org/x/net/html"
)

// Browser is a cookie-keeping HTTP client.
type Browser struct {
	Client *http.Client
}

// New returns a browser using transport (nil: the default).
func New(transport http.RoundTripper) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{Client: &http.Client{Jar: jar, Transport: transport}}
}

// Page is a fetched page.
type Page struct {
	b      *Browser
	URL    *url.URL
	Status int
	Body   string
}

// Get fetches u.
func (b *Browser) Get(u string) (*Page, error) {
	resp, err := b.Client.Get(u)
	if err != nil {
		return nil, err
	}
	return b.page(resp)
}

func (b *Browser) page(resp *http.Response) (*Page, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	return &Page{b: b, URL: resp.Request.URL, Status: resp.StatusCode, Body: string(body)}, nil
}

// Contains reports whether the page's text contains s.
func (p *Page) Contains(s string) bool { return strings.Contains(p.Body, s) }

// Submit fills the page's first form with fields (on top of its own
// inputs, hidden ones included) and submits it.
func (p *Page) Submit(fields map[string]string) (*Page, error) {
	f, err := p.form()
	if err != nil {
		return nil, err
	}
	for k, v := range fields {
		f.values.Set(k, v)
	}
	action, err := p.URL.Parse(f.action)
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(f.method, "get") {
		action.RawQuery = f.values.Encode()
		return p.b.Get(action.String())
	}
	resp, err := p.b.Client.PostForm(action.String(), f.values)
	if err != nil {
		return nil, err
	}
	return p.b.page(resp)
}

type form struct {
	action, method string
	values         url.Values
}

// form parses the first <form> of the page.
func (p *Page) form() (*form, error) {
	z := html.NewTokenizer(strings.NewReader(p.Body))
	var f *form
	for {
		switch z.Next() {
		case html.ErrorToken:
			if f == nil {
				return nil, fmt.Errorf("no form on %s (status %d):\n%s", p.URL, p.Status, p.Body)
			}
			return f, nil
		case html.StartTagToken, html.SelfClosingTagToken:
			t := z.Token()
			switch {
			case t.Data == "form" && f == nil:
				f = &form{action: attr(t, "action"), method: attr(t, "method"), values: url.Values{}}
			case t.Data == "input" && f != nil && attr(t, "name") != "":
				f.values.Set(attr(t, "name"), attr(t, "value"))
			}
		case html.EndTagToken:
			if z.Token().Data == "form" && f != nil {
				return f, nil
			}
		}
	}
}

func attr(t html.Token, name string) string {
	for _, a := range t.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// Text returns the text inside the first element named tag, e.g. "code".
func (p *Page) Text(tag string) string {
	z := html.NewTokenizer(strings.NewReader(p.Body))
	in := false
	var sb strings.Builder
	for {
		switch z.Next() {
		case html.ErrorToken:
			return strings.TrimSpace(sb.String())
		case html.StartTagToken:
			if z.Token().Data == tag {
				in = true
			}
		case html.EndTagToken:
			if in && z.Token().Data == tag {
				return strings.TrimSpace(sb.String())
			}
		case html.TextToken:
			if in {
				sb.Write(z.Text())
			}
		}
	}
}
