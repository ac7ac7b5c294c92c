package scim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
)

// TokenPrefix starts every SCIM token.
const TokenPrefix = "moat_scim_"

// DefaultTokenExpiry is how long a SCIM token lives when its maker does
// not say: a year, since an IdP's provisioning setup is rarely revisited.
const DefaultTokenExpiry = 365 * 24 * time.Hour

// TokenStore is where CreateToken and RevokeToken keep tokens and the
// admin trail.
type TokenStore interface {
	CreateSCIMToken(ctx context.Context, t *store.SCIMToken) error
	DeleteSCIMToken(ctx context.Context, id string) error
	LogAdminAction(ctx context.Context, a *store.AdminAction) error
}

// CreateToken makes a SCIM token named name on behalf of createdBy,
// stores its hash, records "scim_token.create" in the admin trail and
// returns the token (shown once). expiry 0 means DefaultTokenExpiry.
func CreateToken(ctx context.Context, st TokenStore, name, createdBy string, expiry time.Duration) (string, error) {
	if expiry <= 0 {
		expiry = DefaultTokenExpiry
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("make SCIM token: %w", err)
	}
	tok := TokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(tok))
	now := time.Now()
	t := &store.SCIMToken{Hash: sum[:], Name: name, CreatedBy: createdBy, Created: now, Expiry: now.Add(expiry)}
	if err := st.CreateSCIMToken(ctx, t); err != nil {
		return "", fmt.Errorf("store SCIM token: %w", err)
	}
	detail := fmt.Sprintf("%s, expires %s", name, t.Expiry.UTC().Format(time.RFC3339))
	if err := st.LogAdminAction(ctx, &store.AdminAction{Time: now, Actor: createdBy, Action: "scim_token.create", Target: t.ID, Detail: detail}); err != nil {
		return "", fmt.Errorf("admin trail: %w", err)
	}
	return tok, nil
}

// RevokeToken deletes SCIM token id on behalf of actor and records
// "scim_token.revoke"; an unknown id is store.ErrNotFound.
func RevokeToken(ctx context.Context, st TokenStore, id, actor string) error {
	if err := st.DeleteSCIMToken(ctx, id); err != nil {
		return err
	}
	if err := st.LogAdminAction(ctx, &store.AdminAction{Time: time.Now(), Actor: actor, Action: "scim_token.revoke", Target: id}); err != nil {
		return fmt.Errorf("admin trail: %w", err)
	}
	return nil
}
