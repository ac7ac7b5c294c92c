package auditchain

import (
	"encoding/json"
	"fmt"
)

// Rewrite checks line against its hash, applies fn to the record's
// members (the hash member aside) and returns the rewritten line, which
// keeps the hash the record was chained with. The new line no longer
// matches that hash: whoever rewrites a record (to remove a prompt kept
// in clear) must vouch for the new line some other way, as node/audit's
// scrub file and the coordinator's sealed scrubs do.
func Rewrite(line []byte, fn func(fields map[string]json.RawMessage) error) (out []byte, hash string, err error) {
	body, hash, err := Open(line)
	if err != nil {
		return nil, "", err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrBroken, err)
	}
	if err := fn(fields); err != nil {
		return nil, "", err
	}
	rest, err := json.Marshal(fields)
	if err != nil {
		return nil, "", err
	}
	return append([]byte(prefix+hash+`",`), rest[1:]...), hash, nil
}
