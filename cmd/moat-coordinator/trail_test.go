package main

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/moatmesh/moat/coordinator/store"
)

// wantCLITrail checks that the admin trail in data holds each of want
// ("action target"), done by "cli:<user>", with no secret in it.
func wantCLITrail(t *testing.T, data string, want ...string) {
	t.Helper()
	st, err := store.Open(context.Background(), "", data)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	as, err := st.AdminActions(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range as {
		if !strings.HasPrefix(a.Actor, "cli") || strings.Contains(a.Detail, "moat_at_") {
			t.Errorf("trail entry %+v: want a cli actor and no secret", a)
		}
		got = append(got, a.Action+" "+a.Target)
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("admin trail %q lacks %q", got, w)
		}
	}
}
