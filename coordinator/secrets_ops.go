package coordinator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/moatmesh/moat/coordinator/idp"
	"github.com/moatmesh/moat/coordinator/seal"
	"github.com/moatmesh/moat/coordinator/store"
)

// The operations below run beside the servers, on the same database and
// seal key (cmd/moat-coordinator's init and rotate commands).

// withSecrets opens cfg's store, checks the seal key and runs fn.
func withSecrets(ctx context.Context, cfg Config, fn func(st *store.DB, box *seal.Box) error) error {
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	st, err := store.Open(ctx, cfg.Database, cfg.DataDir)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	box, err := openBox(ctx, cfg, st)
	if err != nil {
		return err
	}
	return fn(st, box)
}

// Initialized describes the secrets Init found or made.
type Initialized struct {
	SealKeyID string // seal.KeyID of the seal key
	// TLSFingerprint is the self-signed certificate's SHA-256, when
	// Init was asked to make one.
	TLSFingerprint string
}

// Init makes the coordinator's own secrets once, as the first server
// start would: the seal key (DataDir/seal.key, when cfg.SealKey is
// zero and none exists), the embedded provider's client secret and
// signing key, and with selfSigned the TLS certificate for
// cfg.PublicURL. Secrets already made are kept, so running it again
// changes nothing.
func Init(ctx context.Context, cfg Config, selfSigned bool) (Initialized, error) {
	var out Initialized
	err := withSecrets(ctx, cfg, func(st *store.DB, box *seal.Box) error {
		id, err := st.Setting(ctx, settingSealKeyID)
		if err != nil {
			return err
		}
		out.SealKeyID = string(id)
		if _, err := sharedSecret(ctx, st, box, embeddedClientSecret, random32); err != nil {
			return err
		}
		if err := idp.EnsureSigningKey(ctx, st, box, cfg.DataDir, time.Now()); err != nil {
			return err
		}
		detail := "seal key " + out.SealKeyID
		if selfSigned {
			pair, err := selfSignedPair(ctx, st, box, cfg)
			if err != nil {
				return err
			}
			if _, out.TLSFingerprint, err = parsePair(pair, pair); err != nil {
				return err
			}
			detail += ", self-signed TLS certificate " + out.TLSFingerprint
		}
		return RecordCLIAction(ctx, st, actionInit, "coordinator", detail)
	})
	return out, err
}

// RotateIdPKey makes a new signing key for the embedded provider, which
// every replica signs with from then on; the old keys stay in the key
// set until the tokens they signed expire (idp.RetiredKeyKept) and are
// pruned by a later rotation or start. It returns the new key's id.
func RotateIdPKey(ctx context.Context, cfg Config) (string, error) {
	var kid string
	err := withSecrets(ctx, cfg, func(st *store.DB, box *seal.Box) (err error) {
		if kid, err = idp.RotateSigningKey(ctx, st, box, time.Now()); err != nil {
			return err
		}
		return RecordCLIAction(ctx, st, actionKeyRotate, "idp-key", "new key "+kid)
	})
	return kid, err
}

// RotateSealKey re-seals every sealed value in the database under
// newKey, in one transaction, and records newKey's id; cfg names the
// current key. Every replica must then be restarted with newKey: stop
// them all first, since a replica still on the old key would seal new
// values under it. It returns how many values were re-sealed.
func RotateSealKey(ctx context.Context, cfg Config, newKey [seal.KeySize]byte) (int, error) {
	if newKey == ([seal.KeySize]byte{}) {
		return 0, errors.New("rotate seal key: no new key")
	}
	n := 0
	err := withSecrets(ctx, cfg, func(st *store.DB, old *seal.Box) (err error) {
		nb := seal.New(newKey)
		n, err = st.Reseal(ctx, sealedColumns, func(col store.SealedColumn, key string, sealed []byte) ([]byte, error) {
			for _, ad := range sealedAD[col.Table](key) {
				if v, err := old.Open(sealed, ad); err == nil {
					return nb.Seal(v, ad), nil
				}
			}
			return nil, fmt.Errorf("%w: the current seal key does not open it", seal.ErrOpen)
		}, settingSealKeyID, []byte(seal.KeyID(newKey)))
		if err != nil {
			return err
		}
		// The database is re-sealed: a trail that fails now must not make
		// the caller keep the old key file.
		_ = RecordCLIAction(ctx, st, actionKeyRotate, "seal-key", fmt.Sprintf("new key %s, %d values re-sealed", seal.KeyID(newKey), n))
		return nil
	})
	return n, err
}

// sealedColumns are the database columns holding values sealed under
// the seal key; sealedAD gives, by table, the additional data a row's
// value may have been sealed with. A new sealed column must be added
// here, or rotating the seal key would leave it unreadable.
var sealedColumns = []store.SealedColumn{
	{Table: "secrets", Key: "name", Column: "value"},
	// The client secret's copy from before the secrets table.
	{Table: "settings", Key: "name", Column: "value", Where: "name = '" + embeddedClientSecret + "'"},
	{Table: "users", Key: "id", Column: "totp_secret"},
	{Table: "idp_users", Key: "id", Column: "totp_secret"},
	{Table: "login_sessions", Key: "id", Column: "result"},
	{Table: "audit_cuts", Key: "id", Column: "seal"},
	{Table: "person_keys", Key: "user_id", Column: "private"},
	{Table: "audit_scrubs", Key: "id", Column: "seal"},
}

// The additional data must match where each value is sealed: totp.go,
// login.go, idp/setup.go, checkpoints.go, personkeys.go and
// promptscrub.go.
var sealedAD = map[string]func(key string) [][]byte{
	"secrets":   func(k string) [][]byte { return [][]byte{secretAD(k)} },
	"settings":  func(k string) [][]byte { return [][]byte{secretAD(k)} },
	"users":     func(k string) [][]byte { return [][]byte{[]byte("totp:" + k)} },
	"idp_users": func(k string) [][]byte { return [][]byte{[]byte(k)} },
	"login_sessions": func(k string) [][]byte {
		return [][]byte{[]byte("totp-pending:" + k), []byte("login-result:" + k)}
	},
	"audit_cuts":   func(k string) [][]byte { return [][]byte{[]byte(cutADPrefix + k)} },
	"person_keys":  func(k string) [][]byte { return [][]byte{personKeyAD(k)} },
	"audit_scrubs": func(k string) [][]byte { return [][]byte{[]byte(scrubADPrefix + k)} },
}

// embeddedClientSecret names the embedded provider's client secret
// (embedded.go).
const embeddedClientSecret = "idp-client-secret"
