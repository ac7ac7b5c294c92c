package lockdown

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"os"
	"slices"
	"strings"

	"github.com/google/nftables"
)

// fingerprint hashes everything in the lockdown's tables that decides
// what passes: chains with their hooks and policies, every rule's
// expressions, the sets and their elements, the counters' names (not
// their values). Two reads of unchanged tables give the same value; a
// flush, a deleted table or an added, removed or replaced rule or
// element changes it. It returns ErrNotApplied when table inet moat is
// missing.
func fingerprint() (string, error) {
	conn, err := nftables.New()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, t := range []*nftables.Table{table(), netdevTable()} {
		if _, err := conn.ListTableOfFamily(t.Name, t.Family); err != nil {
			if t.Family == nftables.TableFamilyINet && isNotExist(err) {
				return "", ErrNotApplied
			}
			fmt.Fprintf(h, "no table %d\n", t.Family)
			continue
		}
		if err := hashTable(h, conn, t); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func isNotExist(err error) bool {
	return errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "no such file")
}

func hashTable(h hash.Hash, conn *nftables.Conn, t *nftables.Table) error {
	chains, err := conn.ListChainsOfTableFamily(t.Family)
	if err != nil {
		return fmt.Errorf("list chains: %w", err)
	}
	chains = slices.DeleteFunc(chains, func(c *nftables.Chain) bool { return c.Table.Name != t.Name })
	slices.SortFunc(chains, func(a, b *nftables.Chain) int { return strings.Compare(a.Name, b.Name) })
	for _, c := range chains {
		fmt.Fprintf(h, "chain %d %s %s %v %v %v %q\n", t.Family, c.Name, c.Type, deref(c.Hooknum), deref(c.Priority), deref(c.Policy), c.Device)
		rules, err := conn.GetRules(t, c)
		if err != nil {
			return fmt.Errorf("rules of %s: %w", c.Name, err)
		}
		for _, r := range rules {
			for _, e := range r.Exprs {
				js, _ := json.Marshal(e)
				fmt.Fprintf(h, "  %T %s\n", e, js)
			}
			fmt.Fprintf(h, "  --\n")
		}
	}
	sets, err := conn.GetSets(t)
	if err != nil {
		return fmt.Errorf("list sets: %w", err)
	}
	slices.SortFunc(sets, func(a, b *nftables.Set) int { return strings.Compare(a.Name, b.Name) })
	for _, s := range sets {
		elems, err := conn.GetSetElements(s)
		if err != nil {
			return fmt.Errorf("set %s: %w", s.Name, err)
		}
		keys := make([]string, len(elems))
		for i, e := range elems {
			keys[i] = hex.EncodeToString(e.Key)
		}
		slices.Sort(keys)
		fmt.Fprintf(h, "set %s %s %v\n", s.Name, s.KeyType.Name, keys)
	}
	objs, err := conn.GetObjects(t)
	if err != nil {
		return fmt.Errorf("objects: %w", err)
	}
	var names []string
	for _, o := range objs {
		if c, ok := o.(*nftables.CounterObj); ok {
			names = append(names, c.Name)
		}
	}
	slices.Sort(names)
	fmt.Fprintf(h, "counters %v\n", names)
	return nil
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
