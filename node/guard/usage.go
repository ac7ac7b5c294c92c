package guard

import (
	"encoding/json"

	"github.com/moatmesh/moat/mesh/llmapi"
)

// usage is a token count as the OpenAI APIs report it (chat and
// completions: prompt/completion; responses: input/output).
type usage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	InputTokens      int64 `json:"input_tokens"`
	OutputTokens     int64 `json:"output_tokens"`
}

// openAIPayload is what the guard reads of an OpenAI answer or stream
// event.
type openAIPayload struct {
	Choices *[]struct {
		Delta struct {
			Content   string `json:"content"`
			Reasoning string `json:"reasoning_content"`
		} `json:"delta"`
		Text    string `json:"text"`
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
	} `json:"choices"`
	Usage *usage `json:"usage"`
	// The responses API's events.
	Type     string          `json:"type"`
	Delta    json.RawMessage `json:"delta"`
	Response *struct {
		Usage *usage `json:"usage"`
	} `json:"response"`
}

// ollamaPayload is what the guard reads of an Ollama answer or NDJSON line.
type ollamaPayload struct {
	Message struct {
		Content string `json:"content"`
	} `json:"message"`
	Response        string `json:"response"`
	Done            bool   `json:"done"`
	PromptEvalCount int64  `json:"prompt_eval_count"`
	EvalCount       int64  `json:"eval_count"`
}

// tally is what one payload says about token use.
type tally struct {
	in, out   int64 // reported by the upstream
	reported  bool
	textBytes int  // answer text the payload carries (for estimates)
	usageOnly bool // an OpenAI usage chunk without choices
}

// estimate is the token estimate for n bytes of text.
func estimate(n int) int64 {
	if n <= 0 {
		return 0
	}
	return int64((n + 3) / 4)
}

// readTally reads a payload of family f. Payloads it cannot read count
// nothing.
func readTally(f llmapi.Family, b []byte) tally {
	if t, ok := fastTally(f, b); ok {
		return t
	}
	return decodeTally(f, b)
}

// decodeTally is readTally with encoding/json: the definition of what a
// payload says, which fastTally follows.
func decodeTally(f llmapi.Family, b []byte) tally {
	if f == llmapi.Ollama {
		var p ollamaPayload
		if json.Unmarshal(b, &p) != nil {
			return tally{}
		}
		t := tally{textBytes: len(p.Message.Content) + len(p.Response)}
		if p.Done || p.PromptEvalCount > 0 || p.EvalCount > 0 {
			t.in, t.out, t.reported = p.PromptEvalCount, p.EvalCount, p.PromptEvalCount+p.EvalCount > 0
		}
		return t
	}
	var p openAIPayload
	if json.Unmarshal(b, &p) != nil {
		return tally{}
	}
	var t tally
	if p.Choices != nil {
		for _, ch := range *p.Choices {
			t.textBytes += len(ch.Delta.Content) + len(ch.Delta.Reasoning) + len(ch.Text) + len(ch.Message.Content)
		}
	}
	if len(p.Delta) > 0 && p.Delta[0] == '"' {
		t.textBytes += len(p.Delta) - 2
	}
	u := p.Usage
	if u == nil && p.Response != nil {
		u = p.Response.Usage
	}
	if u != nil {
		t.in, t.out, t.reported = u.PromptTokens+u.InputTokens, u.CompletionTokens+u.OutputTokens, true
		t.usageOnly = p.Choices != nil && len(*p.Choices) == 0
	}
	return t
}
