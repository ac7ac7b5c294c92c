package control

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/mesh/wire"
)

// software is this program and its version, e.g. "moat-node/v1.2.3",
// sent as the User-Agent of every request; the coordinator shows it per
// device and node.
var software = filepath.Base(os.Args[0]) + "/" + cli.BuildInfo().Version

// Software returns what the member says it is: program/version.
func Software() string { return software }

func setMemberHeaders(h http.Header) {
	h.Set("User-Agent", software)
	h.Set(wire.ProtocolHeader, strconv.Itoa(wire.Version))
}
