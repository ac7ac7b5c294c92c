package storetest

import (
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
)

// snapshot is what populate wrote, for verify to find again.
type snapshot struct {
	user    *store.User
	device  *store.Device
	key     *store.EnrollKey
	token   *store.APIToken
	session *store.LoginSession
	policy  *store.PolicyVersion
	idpUser *store.IdPUser
	audit   []*store.AuditRecord
	action  *store.AdminAction
}

// populate writes one of everything.
func populate(t *testing.T, s Store) snapshot {
	c := ctx(t)
	var w snapshot
	w.user = newUser(t, s, "alice")
	w.device = &store.Device{Kind: store.KindUser, UserID: w.user.ID, PublicKey: "pk", CredHash: hash("c"),
		Tags: []string{"t"}, Created: at(0)}
	must(t, s.CreateDevice(c, w.device))
	w.key = &store.EnrollKey{Hash: hash("k"), Reusable: true, Created: at(0)}
	must(t, s.CreateEnrollKey(c, w.key))
	w.token = &store.APIToken{Hash: hash("t"), Name: "ci", Created: at(0)}
	must(t, s.CreateAPIToken(c, w.token))
	w.session = newSession(t, s, "p", at(time.Hour))
	w.policy = &store.PolicyVersion{Text: "{}", Created: at(0)}
	must(t, s.SavePolicy(c, w.policy))
	w.idpUser = &store.IdPUser{Email: "a@x", Created: at(0)}
	must(t, s.CreateIdPUser(c, w.idpUser))
	w.audit = auditRecs(2)
	_, err := s.InsertAudit(c, w.audit)
	must(t, err)
	w.action = &store.AdminAction{Time: at(0), Action: "x"}
	must(t, s.LogAdminAction(c, w.action))
	must(t, s.SetSetting(c, "k", []byte("v")))
	return w
}

// verify finds everything populate wrote.
func verify(t *testing.T, s Store, w snapshot) {
	c := ctx(t)
	check := func(what string, got any, err error, want any) {
		t.Helper()
		must(t, err)
		same(t, got, want, what+" after restart")
	}
	u, err := s.User(c, w.user.ID)
	check("user", u, err, w.user)
	d, err := s.Device(c, w.device.ID)
	check("device", d, err, w.device)
	ks, err := s.EnrollKeys(c)
	check("enrollment keys", ks, err, []*store.EnrollKey{w.key})
	tok, err := s.APITokenByHash(c, hash("t"))
	check("token", tok, err, w.token)
	l, err := s.LoginSession(c, w.session.ID)
	check("session", l, err, w.session)
	p, err := s.Policy(c)
	check("policy", p, err, w.policy)
	iu, err := s.IdPUser(c, w.idpUser.ID)
	check("idp user", iu, err, w.idpUser)
	a, err := s.Audit(c, store.AuditFilter{})
	check("audit", a, err, []*store.AuditRecord{w.audit[1], w.audit[0]})
	as, err := s.AdminActions(c, 0)
	check("admin actions", as, err, []*store.AdminAction{w.action})
	v, err := s.Setting(c, "k")
	check("setting", string(v), err, "v")
	// The allocator carries on where it was.
	n := newNode(t, s, "after")
	if n.IPv4 == w.device.IPv4 {
		t.Fatalf("address %v handed out again after restart", n.IPv4)
	}
}
