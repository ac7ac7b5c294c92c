package scim

import (
	"encoding/json"
	"fmt"
	"strings"
)

// attrs is a SCIM resource's attributes as JSON decodes them.
type attrs = map[string]any

// key is the key of m that names attribute name (SCIM attribute names
// are case-insensitive), or name itself when m has none.
func key(m attrs, name string) string {
	for k := range m {
		if strings.EqualFold(k, name) {
			return k
		}
	}
	return name
}

func get(m attrs, name string) any { return m[key(m, name)] }

func str(m attrs, name string) string {
	s, _ := get(m, name).(string)
	return s
}

// boolOf reads a boolean sent as JSON true/false or, as Entra ID has
// done, as the string "True"/"False"; def when absent or unreadable.
func boolOf(v any, def bool) bool {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		switch strings.ToLower(b) {
		case "true":
			return true
		case "false":
			return false
		}
	}
	return def
}

// primaryEmail is the value of the email marked primary, else of the
// first email, else "".
func primaryEmail(m attrs) string {
	list, _ := get(m, "emails").([]any)
	first := ""
	for _, e := range list {
		em, _ := e.(map[string]any)
		v := str(em, "value")
		if boolOf(get(em, "primary"), false) {
			return v
		}
		if first == "" {
			first = v
		}
	}
	return first
}

// memberIDs is the "value" of each member in m's members.
func memberIDs(m attrs) []string {
	list, _ := get(m, "members").([]any)
	ids := make([]string, 0, len(list))
	for _, e := range list {
		if id := str(asMap(e), "value"); id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

func asMap(v any) attrs {
	m, _ := v.(map[string]any)
	return m
}

// stored is m as it is kept: without what the server makes (id, meta,
// schemas) and without the keys named in drop.
func stored(m attrs, drop ...string) ([]byte, error) {
	out := make(attrs, len(m))
	for k, v := range m {
		out[k] = v
	}
	for _, d := range append([]string{"id", "meta", "schemas"}, drop...) {
		delete(out, key(out, d))
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode attributes: %w", err)
	}
	return b, nil
}

func decode(b []byte) attrs {
	m := attrs{}
	_ = json.Unmarshal(b, &m) // written by stored
	return m
}
