package coordinator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/auditchain"
	"github.com/moatmesh/moat/mesh/promptkey"
)

// The prompt migration. Nodes from before per-person prompt keys kept
// "prompts": "full" in clear ("prompt" in the record). The leader of
// "audit-retention" rewrites every such record it holds: the prompt is
// encrypted to the person's prompt key ("promptSealed") when they have
// one, else removed; "promptScrubbed" says which. A record's hash covers
// its prompt, so the rewritten record no longer matches the hash its
// node chained it with: a scrub (store.AuditScrub) sealed under the seal
// key vouches for that hash and for the new body's SHA-256, and the
// chain checks (retention, the UI's chain check, one record's view)
// accept the record through it. A record that fails its own hash is not
// rewritten (the break stays visible). Records arriving later from nodes
// still of before are rewritten at the next run (hourly).

// scrubADPrefix starts a scrub seal's additional data.
const scrubADPrefix = "audit-scrub:"

// settingScrubCursor is the ingestion seq up to which records were
// looked at by the migration.
const settingScrubCursor = "prompt-scrub-seq"

// scrubFields is what a scrub's seal holds.
func scrubFields(sc *store.AuditScrub) []byte {
	return fmt.Appendf(nil, "%s\n%s\n%s\n%s", sc.ID, sc.NodeID, sc.Hash, sc.BodySHA256)
}

func bodySHA256(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// scrubPrompts rewrites the records with a clear prompt stored since the
// last run and returns how many it encrypted and removed.
func (s *Server) scrubPrompts(ctx context.Context) (sealed, purged int, err error) {
	after := int64(0)
	if b, err := s.store.Setting(ctx, settingScrubCursor); err == nil {
		fmt.Sscan(string(b), &after)
	} else if !errors.Is(err, store.ErrNotFound) {
		return 0, 0, err
	}
	for {
		recs, err := s.store.AuditAfter(ctx, after, retentionPage)
		if err != nil || len(recs) == 0 {
			return sealed, purged, err
		}
		for _, r := range recs {
			how, err := s.scrubRecord(ctx, r)
			if err != nil {
				return sealed, purged, fmt.Errorf("prompt migration, record %s: %w", r.ID, err)
			}
			sealed, purged = sealed+boolInt(how == scrubSealed), purged+boolInt(how == scrubPurged)
		}
		after = recs[len(recs)-1].Seq
		if err := s.store.SetSetting(ctx, settingScrubCursor, fmt.Append(nil, after)); err != nil {
			return sealed, purged, err
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// What scrubRecord did: "promptScrubbed" in the rewritten record.
const (
	scrubSealed = "sealed" // encrypted to the person's prompt key
	scrubPurged = "purged" // removed: the person has no key (erased, or a tagged caller)
)

// scrubRecord rewrites r when it holds a clear prompt and matches its
// own hash, and says what it did ("" when nothing).
func (s *Server) scrubRecord(ctx context.Context, r *store.AuditRecord) (string, error) {
	if !bytes.Contains(r.Body, []byte(`"prompt":`)) {
		return "", nil
	}
	var how string
	line, hash, err := auditchain.Rewrite(r.Body, func(fields map[string]json.RawMessage) error {
		prompt, ok := fields["prompt"]
		if !ok {
			return errNoPrompt
		}
		delete(fields, "prompt")
		var err error
		if how, err = s.sealOldPrompt(ctx, r.UserID, prompt, fields); err != nil {
			return err
		}
		fields["promptScrubbed"], _ = json.Marshal(how)
		return nil
	})
	if errors.Is(err, auditchain.ErrBroken) || errors.Is(err, errNoPrompt) {
		return "", nil // broken: left for the chain check to show
	}
	if err != nil {
		return "", err
	}
	sc := &store.AuditScrub{ID: r.ID, NodeID: r.NodeID, Hash: hash, BodySHA256: bodySHA256(line), Time: s.cfg.Now()}
	sc.Seal = s.box.Seal(scrubFields(sc), []byte(scrubADPrefix+sc.ID))
	if err := s.store.ScrubAudit(ctx, r.Body, line, sc); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return "", nil // another replica did it
		}
		return "", err
	}
	return how, nil
}

// sealOldPrompt puts prompt, encrypted to user's key, into fields as
// promptSealed, and says whether it did (scrubSealed) or the prompt is
// dropped (scrubPurged).
func (s *Server) sealOldPrompt(ctx context.Context, user string, prompt json.RawMessage, fields map[string]json.RawMessage) (string, error) {
	if user == "" {
		return scrubPurged, nil
	}
	k, err := s.store.PersonKey(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		return scrubPurged, nil
	}
	if err != nil {
		return "", err
	}
	if !k.Erased.IsZero() || len(k.Public) == 0 {
		return scrubPurged, nil
	}
	sealed, err := promptkey.Seal(k.Public, user, prompt)
	if err != nil {
		return "", err
	}
	fields["promptSealed"], _ = json.Marshal(sealed)
	return scrubSealed, nil
}

// errNoPrompt says a record holds no clear prompt after all.
var errNoPrompt = errors.New("no clear prompt")

// errScrubForged marks a rewritten record whose scrub does not carry the
// seal or does not match it.
var errScrubForged = fmt.Errorf("%w: the record was rewritten, and no sealed scrub vouches for it (forged or altered)", auditchain.ErrBroken)

// openRecord checks r against its own hash, or against its sealed scrub
// when the prompt migration rewrote it, and returns its chain link.
func (s *Server) openRecord(ctx context.Context, r *store.AuditRecord) (auditchain.Link, error) {
	link, err := auditchain.OpenLink(r.Body)
	if err == nil || !bytes.Contains(r.Body, []byte(`"promptScrubbed":`)) {
		return link, err
	}
	sc, serr := s.store.AuditScrub(ctx, r.ID)
	if serr != nil {
		return auditchain.Link{}, errScrubForged
	}
	got, oerr := s.box.Open(sc.Seal, []byte(scrubADPrefix+sc.ID))
	if oerr != nil || !bytes.Equal(got, scrubFields(sc)) || sc.NodeID != r.NodeID || sc.BodySHA256 != bodySHA256(r.Body) {
		return auditchain.Link{}, errScrubForged
	}
	if err := json.Unmarshal(r.Body, &link); err != nil {
		return auditchain.Link{}, errScrubForged
	}
	link.Hash = sc.Hash
	return link, nil
}

// recordScrub writes a migration run that rewrote records to the admin
// trail.
func (s *Server) recordScrub(ctx context.Context, sealed, purged int) {
	if sealed+purged == 0 {
		return
	}
	s.recordAs(ctx, actorRetention, actionPromptScrub, "audit",
		fmt.Sprintf("prompts kept in clear by nodes of before: %d encrypted to their person's key, %d removed (no key)", sealed, purged))
}

// actionPromptScrub is the admin-trail action of a prompt migration run.
const actionPromptScrub = "audit.prompts"
