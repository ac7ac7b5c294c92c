package lockdown

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
)

// Status is the lockdown as the kernel holds it, read back over netlink.
type Status struct {
	Scope    Scope     // ScopeHost if the output chain drops by default, else ScopeService
	Chains   []Chain   // output, input, then the drop chains
	Sets     []Set     // every named set, in name order
	Counters []Counter // one per drop category, in category order
}

// Chain is one chain of the table. Rules are in nft syntax, each with a
// short reason after a colon.
type Chain struct {
	Table  string // "inet moat" or "netdev moat"
	Name   string
	Hook   string // "output", "input", "forward", "prerouting", "egress" or "" for a regular chain
	Device string // for an egress chain, the device it filters
	Policy string // "drop", "accept" or "" for a regular chain
	Rules  []string
}

// Set is one named set and its elements in nft syntax.
type Set struct {
	Name     string
	Elements []string
}

// Counter is what one drop category has dropped since Apply.
type Counter struct {
	Category string // one of the Cat* constants
	Packets  uint64
	Bytes    uint64
}

// Inspect reads the lockdown table from the kernel. It needs no Lockdown
// value, so `moat-node lockdown status` can run beside the node. It
// returns ErrNotApplied when there is no table.
func Inspect() (Status, error) {
	conn, err := nftables.New()
	if err != nil {
		return Status{}, fmt.Errorf("lockdown status: open netlink: %w", err)
	}
	t := table()
	if _, err := conn.ListTableOfFamily(TableName, nftables.TableFamilyINet); err != nil {
		if errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "no such file") {
			return Status{}, ErrNotApplied
		}
		return Status{}, fmt.Errorf("lockdown status: %w", err)
	}
	var st Status
	if st.Chains, err = readChains(conn, t); err != nil {
		return Status{}, err
	}
	var packetCounters []Counter
	if nd := netdevTable(); tableExists(conn, nd) {
		chains, err := readChains(conn, nd)
		if err != nil {
			return Status{}, err
		}
		st.Chains = append(st.Chains, chains...)
		if packetCounters, err = readCounters(conn, nd); err != nil {
			return Status{}, err
		}
	}
	st.Scope = ScopeService
	if len(st.Chains) > 0 && st.Chains[0].Policy == "drop" {
		st.Scope = ScopeHost
	}
	if st.Sets, err = readSets(conn, t); err != nil {
		return Status{}, err
	}
	st.Counters, err = readCounters(conn, t)
	st.Counters = append(st.Counters, packetCounters...)
	return st, err
}

func tableExists(conn *nftables.Conn, t *nftables.Table) bool {
	_, err := conn.ListTableOfFamily(t.Name, t.Family)
	return err == nil
}

var hookNames = map[nftables.ChainHook]string{
	*nftables.ChainHookOutput: "output", *nftables.ChainHookInput: "input",
	*nftables.ChainHookForward: "forward", *nftables.ChainHookPrerouting: "prerouting",
}

func readChains(conn *nftables.Conn, t *nftables.Table) ([]Chain, error) {
	all, err := conn.ListChainsOfTableFamily(t.Family)
	if err != nil {
		return nil, fmt.Errorf("lockdown status: list chains: %w", err)
	}
	var out []Chain
	for _, c := range all {
		if c.Table.Name != TableName {
			continue
		}
		rules, err := conn.GetRules(t, c)
		if err != nil {
			return nil, fmt.Errorf("lockdown status: rules of %s: %w", c.Name, err)
		}
		ch := Chain{Table: "inet " + TableName, Name: c.Name, Device: c.Device}
		if c.Hooknum != nil {
			ch.Hook = hookNames[*c.Hooknum]
		}
		if t.Family == nftables.TableFamilyNetdev {
			ch.Table = "netdev " + TableName
			if c.Hooknum != nil {
				ch.Hook = "egress" // the only hook the lockdown uses there
			}
		}
		if c.Policy != nil {
			ch.Policy = map[nftables.ChainPolicy]string{nftables.ChainPolicyDrop: "drop", nftables.ChainPolicyAccept: "accept"}[*c.Policy]
		}
		for _, r := range rules {
			text, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			ch.Rules = append(ch.Rules, text)
		}
		out = append(out, ch)
	}
	slices.SortStableFunc(out, func(a, b Chain) int { return chainRank(a) - chainRank(b) })
	return out, nil
}

func chainRank(c Chain) int {
	switch c.Name {
	case "output":
		return 0
	case "input":
		return 1
	case "forward":
		return 2
	case "prerouting":
		return 3
	}
	return 4
}

func readSets(conn *nftables.Conn, t *nftables.Table) ([]Set, error) {
	sets, err := conn.GetSets(t)
	if err != nil {
		return nil, fmt.Errorf("lockdown status: list sets: %w", err)
	}
	var out []Set
	for _, s := range sets {
		elems, err := conn.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("lockdown status: set %s: %w", s.Name, err)
		}
		set := Set{Name: s.Name}
		for _, e := range elems {
			set.Elements = append(set.Elements, formatKey(e.Key))
		}
		slices.Sort(set.Elements)
		out = append(out, set)
	}
	slices.SortFunc(out, func(a, b Set) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func readCounters(conn *nftables.Conn, t *nftables.Table) ([]Counter, error) {
	objs, err := conn.GetObjects(t)
	if err != nil {
		return nil, fmt.Errorf("lockdown status: read counters: %w", err)
	}
	var out []Counter
	for _, o := range objs {
		if c, ok := o.(*nftables.CounterObj); ok {
			out = append(out, Counter{Category: c.Name, Packets: c.Packets, Bytes: c.Bytes})
		}
	}
	slices.SortFunc(out, func(a, b Counter) int { return strings.Compare(a.Category, b.Category) })
	return out, nil
}

// Counter returns the counter of category cat, and whether there is one.
func (s Status) Counter(cat string) (Counter, bool) {
	for _, c := range s.Counters {
		if c.Category == cat {
			return c, true
		}
	}
	return Counter{}, false
}

// Set returns the elements of the named set, and whether there is one.
func (s Status) Set(name string) ([]string, bool) {
	for _, set := range s.Sets {
		if set.Name == name {
			return set.Elements, true
		}
	}
	return nil, false
}

// String renders the status for `moat-node lockdown status`, close to
// `nft list table inet moat`.
func (s Status) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lockdown: table inet %s, scope %s\n", TableName, s.Scope)
	for _, c := range s.Chains {
		if c.Device != "" {
			fmt.Fprintf(&b, "\nchain %s (table %s, hook %s device %s, policy %s)\n", c.Name, c.Table, c.Hook, c.Device, c.Policy)
		} else if c.Hook != "" {
			fmt.Fprintf(&b, "\nchain %s (hook %s, policy %s)\n", c.Name, c.Hook, c.Policy)
		} else {
			fmt.Fprintf(&b, "\nchain %s\n", c.Name)
		}
		for _, r := range c.Rules {
			fmt.Fprintf(&b, "  %s\n", r)
		}
	}
	b.WriteString("\nsets\n")
	for _, set := range s.Sets {
		fmt.Fprintf(&b, "  %s = { %s }\n", set.Name, strings.Join(set.Elements, ", "))
	}
	b.WriteString("\ndropped\n")
	for _, c := range s.Counters {
		fmt.Fprintf(&b, "  %-18s %10d packets %12d bytes\n", c.Category, c.Packets, c.Bytes)
	}
	return b.String()
}
