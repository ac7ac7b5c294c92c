package idp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
)

// DefaultSetupTTL is how long a setup link works when AddUser is given
// no ttl.
const DefaultSetupTTL = 72 * time.Hour

// AddUser creates a local user with a one-time setup link, or, when a user
// with that email exists, gives them a new setup link (the previous link
// stops working). Either way the record takes the given name (unless
// empty), admin flag and groups. It returns the link,
// publicURL + "/idp/setup?token=…", which works once, for ttl (zero means
// DefaultSetupTTL). The token is 32 random bytes; only its SHA-256 is
// stored.
//
// The person opening the link chooses a password and enrolls an
// authenticator app. For an existing user this replaces both and lifts
// any lockout once completed; until then the old password and app keep
// working.
func AddUser(ctx context.Context, st Users, email, name string, admin bool, groups []string, publicURL string, ttl time.Duration) (string, error) {
	email = normalizeEmail(email)
	if !validEmail(email) {
		return "", fmt.Errorf("add user: %q is not an email address", email)
	}
	base, err := url.Parse(strings.TrimRight(publicURL, "/"))
	if err != nil || !base.IsAbs() || base.Host == "" {
		return "", fmt.Errorf("add user: public URL %q is not an absolute URL", publicURL)
	}
	if ttl <= 0 {
		ttl = DefaultSetupTTL
	}
	token, hash := newSetupToken()
	u, err := st.IdPUserByEmail(ctx, email)
	isNew := errors.Is(err, store.ErrNotFound)
	switch {
	case isNew:
		u = &store.IdPUser{ID: store.NewID("iu_"), Email: email, Created: time.Now().UTC()}
	case err != nil:
		return "", fmt.Errorf("add user: %w", err)
	}
	if name != "" {
		u.Name = name
	}
	u.Admin, u.Groups = admin, slices.Clone(groups)
	u.SetupHash, u.SetupExpiry = hash, time.Now().Add(ttl).UTC()
	if isNew {
		err = st.CreateIdPUser(ctx, u)
	} else {
		err = st.UpdateIdPUser(ctx, u)
	}
	if err != nil {
		return "", fmt.Errorf("add user %s: %w", email, err)
	}
	return base.String() + PathPrefix + "/setup?token=" + token, nil
}

// newSetupToken returns a random setup token and its SHA-256.
func newSetupToken() (string, []byte) {
	var b [32]byte
	rand.Read(b[:])
	token := base64.RawURLEncoding.EncodeToString(b[:])
	return token, setupHash(token)
}

func setupHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}
