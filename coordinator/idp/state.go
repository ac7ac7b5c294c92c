package idp

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/moatmesh/moat/coordinator/store"
)

// Lifetimes and caps of the protocol state.
const (
	requestTTL  = 15 * time.Minute // to finish signing in
	codeTTL     = time.Minute      // to exchange a code
	tokenTTL    = 15 * time.Minute // access tokens (userinfo only)
	maxRequests = 10_000           // sign-ins in progress
	maxTokens   = 10_000           // live access tokens
	sweepEvery  = time.Minute
)

var (
	errBusy       = errors.New("too many sign-ins in progress; try again in a few minutes")
	errExpired    = errors.New("this sign-in has expired or is unknown; go back to the application and start again")
	errCodeIssued = errors.New("this sign-in already returned to the application; start again")
)

// State is where the provider keeps sign-ins in progress, authorization
// codes, access and refresh tokens: the store (store.DB), shared by every replica,
// so that each step of a sign-in may land on any of them. Keys are the
// SHA-256 of the id, code or token. Lookups that find nothing live at the
// given time return an error wrapping store.ErrNotFound; a cap reached is
// store.ErrExhausted.
type State interface {
	CreateIdPAuthRequest(ctx context.Context, a *store.IdPAuthRequest, now time.Time, max int) error
	IdPAuthRequest(ctx context.Context, hash []byte, now time.Time) (*store.IdPAuthRequest, error)
	UpdateIdPAuthRequest(ctx context.Context, hash []byte, now time.Time, code *store.IdPCode, f func(*store.IdPAuthRequest) error) (*store.IdPAuthRequest, error)
	DeleteIdPAuthRequest(ctx context.Context, hash []byte) error
	TakeIdPCode(ctx context.Context, hash []byte, now time.Time) ([]byte, error)
	CreateIdPToken(ctx context.Context, t *store.IdPToken, now time.Time, max int) error
	IdPToken(ctx context.Context, hash []byte, now time.Time) (*store.IdPToken, error)
	DeleteIdPToken(ctx context.Context, hash []byte) error
	CreateIdPRefreshToken(ctx context.Context, t *store.IdPRefreshToken, now time.Time, max int) error
	IdPRefreshToken(ctx context.Context, hash []byte, now time.Time) (*store.IdPRefreshToken, error)
	TakeIdPRefreshToken(ctx context.Context, hash []byte, now time.Time) error
	DeleteExpiredIdPState(ctx context.Context, now time.Time) error
}

// state is the provider's protocol state over State. It hands out
// copies; changes go through update.
type state struct {
	st                     State
	maxRequests, maxTokens int // the caps; 0 is the package's default
	mu                     struct {
		sync.Mutex
		lastSweep time.Time
	}
}

func keyHash(v string) []byte {
	h := sha256.Sum256([]byte(v))
	return h[:]
}

// savedRequest is how an authRequest is kept in the store (all but its
// id, which the store only knows hashed).
type savedRequest struct {
	ClientID     string              `json:"client_id"`
	RedirectURI  string              `json:"redirect_uri"`
	State        string              `json:"state,omitempty"`
	Nonce        string              `json:"nonce,omitempty"`
	Scopes       []string            `json:"scopes"`
	ResponseType oidc.ResponseType   `json:"response_type"`
	ResponseMode oidc.ResponseMode   `json:"response_mode,omitempty"`
	Challenge    *oidc.CodeChallenge `json:"challenge,omitempty"`
	Prompt       []string            `json:"prompt,omitempty"`
	Browser      []byte              `json:"browser,omitempty"`
	PwUser       string              `json:"pw_user,omitempty"`
	PwEmail      string              `json:"pw_email,omitempty"`
	UserID       string              `json:"user_id,omitempty"`
	AuthTime     time.Time           `json:"auth_time"`
	Done         bool                `json:"done,omitempty"`
	Coded        bool                `json:"coded,omitempty"`
	Method       string              `json:"method,omitempty"`
}

func encodeRequest(a *authRequest) *store.IdPAuthRequest {
	data, err := json.Marshal(savedRequest{
		ClientID: a.clientID, RedirectURI: a.redirectURI, State: a.state, Nonce: a.nonce,
		Scopes: a.scopes, ResponseType: a.responseType, ResponseMode: a.responseMode,
		Challenge: a.challenge, Prompt: a.prompt, Browser: a.browser, PwUser: a.pwUser,
		PwEmail: a.pwEmail, UserID: a.userID, AuthTime: a.authTime, Done: a.done, Coded: a.coded,
		Method: a.method,
	})
	if err != nil {
		panic("idp: encode sign-in: " + err.Error()) // plain strings, bytes and times
	}
	return &store.IdPAuthRequest{Hash: keyHash(a.id), Data: data, Expires: a.expires}
}

func decodeRequest(id string, r *store.IdPAuthRequest) (*authRequest, error) {
	var s savedRequest
	if err := json.Unmarshal(r.Data, &s); err != nil {
		return nil, err
	}
	return &authRequest{
		id: id, clientID: s.ClientID, redirectURI: s.RedirectURI, state: s.State, nonce: s.Nonce,
		scopes: s.Scopes, responseType: s.ResponseType, responseMode: s.ResponseMode,
		challenge: s.Challenge, prompt: s.Prompt, expires: r.Expires, browser: s.Browser,
		pwUser: s.PwUser, pwEmail: s.PwEmail, userID: s.UserID, authTime: s.AuthTime,
		done: s.Done, coded: s.Coded, method: s.Method,
	}, nil
}

// sweep deletes expired state at most once per sweepEvery (per process;
// readers check expiry themselves).
func (m *state) sweep(ctx context.Context, now time.Time) {
	m.mu.Lock()
	due := now.Sub(m.mu.lastSweep) >= sweepEvery
	if due {
		m.mu.lastSweep = now
	}
	m.mu.Unlock()
	if due {
		_ = m.st.DeleteExpiredIdPState(ctx, now) // retried at the next sweep
	}
}

// capped turns the store's ErrExhausted into errBusy.
func capped(err error) error {
	if errors.Is(err, store.ErrExhausted) {
		return errBusy
	}
	return err
}

func (m *state) addRequest(ctx context.Context, a *authRequest, now time.Time) error {
	m.sweep(ctx, now)
	return capped(m.st.CreateIdPAuthRequest(ctx, encodeRequest(a), now, cmp.Or(m.maxRequests, maxRequests)))
}

// request returns the live request id. Only an unknown or expired one is
// errExpired; a store failure is returned as is.
func (m *state) request(ctx context.Context, id string, now time.Time) (*authRequest, error) {
	r, err := m.st.IdPAuthRequest(ctx, keyHash(id), now)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errExpired
	}
	if err != nil {
		return nil, err
	}
	return decodeRequest(id, r)
}

// update applies f to the live request id under its row lock and returns
// the result; f's error leaves the request unchanged. With code, the code
// is stored in the same transaction.
func (m *state) update(ctx context.Context, id string, now time.Time, code *store.IdPCode, f func(*authRequest) error) (*authRequest, error) {
	var out *authRequest
	_, err := m.st.UpdateIdPAuthRequest(ctx, keyHash(id), now, code, func(r *store.IdPAuthRequest) error {
		a, err := decodeRequest(id, r)
		if err != nil {
			return err
		}
		if err := f(a); err != nil {
			return err
		}
		*r = *encodeRequest(a)
		out = a
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errExpired
	}
	return out, err
}

// deleteRequest forgets request id, which may also be the hashRef of a
// request loaded by its code.
func (m *state) deleteRequest(ctx context.Context, id string) error {
	h, ok := strings.CutPrefix(id, hashRefPrefix)
	key := keyHash(id)
	if b, err := base64.RawURLEncoding.DecodeString(h); ok && err == nil {
		key = b
	}
	return m.st.DeleteIdPAuthRequest(ctx, key)
}

// hashRefPrefix marks the id of a sign-in loaded by its code: the store
// knows only its hash, so that stands in for the id, which op uses for
// nothing but deleting the sign-in once the code is exchanged. Only
// deleteRequest accepts it; every lookup hashes what it is given.
const hashRefPrefix = "sha256:"

// saveCode records the one code of a finished sign-in.
func (m *state) saveCode(ctx context.Context, requestID, code string, now time.Time) error {
	c := &store.IdPCode{Hash: keyHash(code), RequestHash: keyHash(requestID), Expires: now.Add(codeTTL)}
	_, err := m.update(ctx, requestID, now, c, func(a *authRequest) error {
		if !a.done || a.coded {
			return errCodeIssued
		}
		a.coded = true
		return nil
	})
	return err
}

// takeCode spends code: it works once, within codeTTL, for a finished
// sign-in.
func (m *state) takeCode(ctx context.Context, code string, now time.Time) (*authRequest, bool) {
	req, err := m.st.TakeIdPCode(ctx, keyHash(code), now)
	if err != nil {
		return nil, false
	}
	r, err := m.st.IdPAuthRequest(ctx, req, now)
	if err != nil {
		return nil, false
	}
	a, err := decodeRequest(hashRefPrefix+base64.RawURLEncoding.EncodeToString(req), r)
	if err != nil || !a.done {
		return nil, false
	}
	return a, true
}

func (m *state) addToken(ctx context.Context, id string, t accessToken, now time.Time) error {
	m.sweep(ctx, now)
	return capped(m.st.CreateIdPToken(ctx, &store.IdPToken{Hash: keyHash(id), Subject: t.subject,
		ClientID: t.clientID, Scopes: t.scopes, Expires: t.expires}, now, cmp.Or(m.maxTokens, maxTokens)))
}

func (m *state) token(ctx context.Context, id string, now time.Time) (accessToken, bool) {
	t, err := m.st.IdPToken(ctx, keyHash(id), now)
	if err != nil {
		return accessToken{}, false
	}
	return accessToken{subject: t.Subject, clientID: t.ClientID, scopes: t.Scopes, expires: t.Expires}, true
}

func (m *state) deleteToken(ctx context.Context, id string) error {
	return m.st.DeleteIdPToken(ctx, keyHash(id))
}
