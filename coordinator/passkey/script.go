package passkey

import (
	_ "embed"
	"net/http"
)

// Script is the browser side of the ceremonies: it runs the ceremony of
// every form marked data-passkey="register" or "login" whose data-options
// hold Ceremony.Options, puts the answer into the form's "answer" field
// and posts the form. Pages that use it allow script-src 'self'.
//
//go:embed passkey.js
var Script []byte

// ServeScript serves Script.
func ServeScript(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(Script)
}
