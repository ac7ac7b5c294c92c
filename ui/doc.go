// Package ui is moat's admin and self-service web UI: an http.Handler,
// server-rendered from embedded templates, over a small interface that the
// coordinator satisfies. It imports neither coordinator nor node.
package ui
