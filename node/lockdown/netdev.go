package lockdown

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Packet sockets (AF_PACKET) write frames straight to a device: the inet
// table never sees them. The table netdev moat hooks the egress of each
// device (Linux 5.16+, and 6.x for PACKET_QDISC_BYPASS) and drops frames
// that a process's socket sent without the stack having routed them. A
// routed packet carries a route (`meta rtclassid` loads), so it has
// passed the inet table; the kernel's own ARP has no socket.

func netdevTable() *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyNetdev, Name: TableName}
}

// packetRules are the rules of each egress chain.
func packetRules(cfg Config) []rule {
	out := []rule{accept("meta rtclassid exists accept: routed by the stack, so the inet table has passed it", present(expr.MetaKeyRTCLASSID))}
	if cfg.AllowDHCP && cfg.Scope == ScopeHost {
		out = append(out, accept("meta protocol ip ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept: DHCP client broadcast",
			etherType(unix.ETH_P_IP), l4proto(unix.IPPROTO_UDP), addrMatch(mustPrefix("255.255.255.255/32"), false), sport(68), dport(67)))
	}
	who, match := "meta skuid exists", present(expr.MetaKeySKUID)
	if cfg.Scope == ScopeService {
		who, match = fmt.Sprintf("meta skuid %d", cfg.ServiceUID), skuid(cfg.ServiceUID)
	}
	return append(out, toDrop(CatEgressPacket, who+": a packet socket's frame", match))
}

// buildNetdev queues table netdev moat: replaced, with one egress chain
// per hooked device. In service scope without a service uid there is
// nothing to filter and the table is left out.
func buildNetdev(conn *nftables.Conn, cfg Config, ifs ifaces) {
	t := netdevTable()
	conn.AddTable(t)
	conn.DelTable(t)
	if cfg.Scope == ScopeService && cfg.ServiceUID == 0 {
		return
	}
	conn.AddTable(t)
	conn.AddObj(&nftables.CounterObj{Table: t, Name: CatEgressPacket})
	addRules(conn, conn.AddChain(&nftables.Chain{Name: "drop_" + CatEgressPacket, Table: t}), dropRules(CatEgressPacket, cfg.LogRate))
	policy := nftables.ChainPolicyAccept
	rules := packetRules(cfg)
	for _, dev := range ifs.hooked {
		ch := conn.AddChain(&nftables.Chain{Name: "egress_" + dev, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookEgress, Priority: nftables.ChainPriorityFilter, Device: dev, Policy: &policy})
		addRules(conn, ch, rules)
	}
}

// deleteNetdev queues the deletion of table netdev moat if it exists.
func deleteNetdev(conn *nftables.Conn) {
	c, err := nftables.New()
	if err != nil {
		return
	}
	if _, err := c.ListTableOfFamily(TableName, nftables.TableFamilyNetdev); err == nil {
		conn.DelTable(netdevTable())
	}
}

// probePacketFilter says whether this kernel can filter packet sockets:
// it adds a netdev table with an egress chain on loopback and the rules
// the filter uses, and deletes it, in one batch that leaves nothing
// behind. nil means it can; else the error says why not.
func probePacketFilter() error {
	ifs, err := readIfaces("")
	if err != nil {
		return err
	}
	conn, err := nftables.New()
	if err != nil {
		return err
	}
	t := &nftables.Table{Family: nftables.TableFamilyNetdev, Name: TableName + "-probe"}
	conn.AddTable(t)
	policy := nftables.ChainPolicyAccept
	ch := conn.AddChain(&nftables.Chain{Name: "probe", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookEgress, Priority: nftables.ChainPriorityFilter, Device: ifs.loName, Policy: &policy})
	addRules(conn, ch, []rule{
		accept("", present(expr.MetaKeyRTCLASSID)),
		{"", append(present(expr.MetaKeySKUID), verdict(expr.VerdictDrop))},
	})
	conn.DelTable(t)
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("this kernel cannot filter packet sockets (needs nf_tables netdev egress hooks, Linux 5.16+ with CONFIG_NETFILTER_EGRESS, and CONFIG_IP_ROUTE_CLASSID): %w", err)
	}
	return nil
}

// PacketFilter says whether packet sockets are filtered, on which
// devices, and if not, why.
func (l *Lockdown) PacketFilter() (hooked, skipped []string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.packetErr != nil {
		return nil, nil, l.packetErr
	}
	return l.ifs.hooked, l.ifs.skipped, nil
}

// newConn opens a netlink connection to nf_tables whose receive buffer
// holds the acknowledgements of a whole lockdown batch (several hundred
// messages overflow the default and fail with ENOBUFS).
func newConn() (*nftables.Conn, error) {
	return nftables.New(nftables.WithSockOptions(func(c *netlink.Conn) error {
		rc, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
		}); err != nil {
			return err
		}
		if serr != nil { // without CAP_NET_ADMIN: as large as allowed
			return c.SetReadBuffer(8 << 20)
		}
		return nil
	}))
}
