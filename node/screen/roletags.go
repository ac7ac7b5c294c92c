package screen

import "strings"

// roleMarkers are the chat-template markers that open a privileged turn
// (ChatML, Llama 2 and 3, Zephyr/Phi, Gemma), lower-cased: in a prompt
// or a document they forge a system or assistant message.
var roleMarkers = []string{
	"<|im_start|>system", "<|im_start|>assistant", "<|start_header_id|>system", "<|start_header_id|>assistant",
	"<|system|>", "<|assistant|>", "<<sys>>", "[inst]", "[/inst]", "<start_of_turn>model", "<|endoftext|>",
}

// roleTags are the roles of fake XML role tags: a closing tag of one
// followed by an opening tag of a privileged one, "</user><system>".
var (
	roleClosers = []string{"user", "human", "context", "document", "input", "query"}
	roleOpeners = []string{"system", "assistant", "developer", "admin", "instructions"}
)

// csTagOpen are the bytes a role tag or template marker opens with.
const tagOpens = "<["

var csTagOpen = chars(tagOpens)

// findRoleTags finds chat-template markers and fake role tags.
func findRoleTags(c *ctx, s string) {
	for i := 0; ; {
		i = nextOf(s, i, tagOpens, csTagOpen)
		if i == len(s) {
			return
		}
		if n := roleTagAt(s[i:]); n > 0 {
			c.add(rRoleTag, i, i+n)
			i += n
			continue
		}
		i++
	}
}

// roleTagAt returns the length of the marker or tag pair at the start of
// t, or 0.
func roleTagAt(t string) int {
	for _, m := range roleMarkers {
		if hasPrefixFold(t, m) {
			return len(m)
		}
	}
	if !strings.HasPrefix(t, "</") {
		return 0
	}
	for _, r := range roleClosers {
		if hasPrefixFold(t[2:], r) && strings.HasPrefix(t[2+len(r):], ">") {
			j := 3 + len(r)
			for j < len(t) && j < 3+len(r)+8 && (t[j] == ' ' || t[j] == '\n' || t[j] == '\r' || t[j] == '\t') {
				j++
			}
			if !strings.HasPrefix(t[j:], "<") {
				return 0
			}
			for _, o := range roleOpeners {
				if hasPrefixFold(t[j+1:], o) && strings.HasPrefix(t[j+1+len(o):], ">") {
					return j + 2 + len(o)
				}
			}
			return 0
		}
	}
	return 0
}
