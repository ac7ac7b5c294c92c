package guard

import "github.com/moatmesh/moat/mesh/llmapi"

// The JSON names fastTally reads; they mirror openAIPayload, usage and
// ollamaPayload.
var (
	namesOpenAI   = []string{"choices", "usage", "type", "delta", "response"}
	namesChoice   = []string{"delta", "text", "message"}
	namesDelta    = []string{"content", "reasoning_content"}
	namesMessage  = []string{"content"}
	namesUsage    = []string{"prompt_tokens", "completion_tokens", "input_tokens", "output_tokens"}
	namesResponse = []string{"usage"}
	namesOllama   = []string{"message", "response", "done", "prompt_eval_count", "eval_count"}
)

// fastTally is readTally in one pass without allocating, for the plain
// payloads upstreams send. It returns what decodeTally returns for b, or
// false when b has a shape it leaves to decodeTally (escaped or
// case-folded keys, a field given twice, deep nesting).
func fastTally(f llmapi.Family, b []byte) (tally, bool) {
	s := jscan{b: b}
	if s.peek() != '{' {
		return tally{}, true // null, not an object, or not JSON: nothing to count
	}
	var t tally
	if f == llmapi.Ollama {
		t = s.ollama()
	} else {
		t = s.openAI()
	}
	s.end()
	switch s.state {
	case scanOK:
		return t, true
	case scanZero:
		return tally{}, true
	}
	return tally{}, false
}

func (s *jscan) openAI() tally {
	var t tally
	var u, ru [4]int64 // namesUsage of "usage" and of "response"."usage"
	var haveChoices, haveUsage, haveRespUsage bool
	choices := 0
	s.object(0, namesOpenAI, func(i int) {
		switch i {
		case 0:
			if s.null() {
				return
			}
			haveChoices = true
			for more := s.enter('[', ']'); more; more = s.more(']') {
				choices++
				t.textBytes += s.choice()
			}
		case 1:
			haveUsage = s.object(1, namesUsage, func(k int) { s.int64(&u[k]) })
		case 2:
			s.text()
		case 3:
			if s.peek() == '"' { // a json.RawMessage: its raw length counts
				raw, _, _ := s.str()
				t.textBytes += max(len(raw)-2, 0)
			} else {
				s.skip(1)
			}
		case 4:
			s.object(1, namesResponse, func(int) {
				haveRespUsage = s.object(2, namesUsage, func(k int) { s.int64(&ru[k]) })
			})
		}
	})
	if !haveUsage && haveRespUsage {
		u, haveUsage = ru, true
	}
	if haveUsage {
		t.in, t.out, t.reported = u[0]+u[2], u[1]+u[3], true
		t.usageOnly = haveChoices && choices == 0
	}
	return t
}

// choice reads one element of "choices" and returns its text's length.
func (s *jscan) choice() int {
	n := 0
	s.object(2, namesChoice, func(i int) {
		switch i {
		case 0:
			s.object(3, namesDelta, func(int) { n += s.text() })
		case 1:
			n += s.text()
		case 2:
			s.object(3, namesMessage, func(int) { n += s.text() })
		}
	})
	return n
}

func (s *jscan) ollama() tally {
	var text int
	var done bool
	var in, out int64
	s.object(0, namesOllama, func(i int) {
		switch i {
		case 0:
			s.object(1, namesMessage, func(int) { text += s.text() })
		case 1:
			text += s.text()
		case 2:
			s.boolean(&done)
		case 3:
			s.int64(&in)
		case 4:
			s.int64(&out)
		}
	})
	t := tally{textBytes: text}
	if done || in > 0 || out > 0 {
		t.in, t.out, t.reported = in, out, in+out > 0
	}
	return t
}
