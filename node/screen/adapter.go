package screen

import (
	"errors"
	"fmt"
)

// MaxChoices bounds the parallel answers (OpenAI "n") one filter screens.
const MaxChoices = 16

// ErrMalformedEvent is returned (wrapped) for upstream data that is not
// the JSON the format promises. The filters fail closed: text they cannot
// find cannot be screened, so it is not passed on.
var ErrMalformedEvent = errors.New("malformed upstream event")

// contentField is a text field found in an event payload.
type contentField struct {
	pos        int // array position of the choice (0 for Ollama)
	start, end int // the string literal, quotes included
}

// choice is the screening state of one parallel answer.
type choice struct {
	st    *Stream
	index int    // the choice's "index" value
	tmpl  []byte // the last payload that carried text for this choice
	field [2]int // the text field's literal in tmpl
}

// jsonText rewrites the text fields of JSON payloads through Streams, one
// per choice, keeping every payload valid JSON.
type jsonText struct {
	sc      *Scanner
	choices []*choice
	isText  func(w *jwalker) bool // whether the current scalar is a text field
	w       jwalker
	fields  []contentField
	index   [MaxChoices]int // "index" value per array position; -1 if absent
	text    []byte          // scratch: decoded field text
	out     []byte          // scratch: released text
	done    bool            // Ollama's "done": true was seen in the payload
}

func newJSONText(sc *Scanner, isText func(w *jwalker) bool) *jsonText {
	j := &jsonText{sc: sc, isText: isText}
	j.w.visit = j.visit
	return j
}

func (j *jsonText) visit(w *jwalker, start, end int) {
	b := w.b[start:end]
	switch {
	case j.isText(w) && b[0] == '"':
		pos := 0
		if w.depth >= 2 && w.path[1].key == nil {
			pos = w.path[1].idx
		}
		j.fields = append(j.fields, contentField{pos, start, end})
	case w.at("choices", "", "index") && w.path[1].idx < MaxChoices:
		n := 0
		for _, c := range b {
			if c < '0' || c > '9' || n > MaxChoices {
				n = -1
				break
			}
			n = n*10 + int(c-'0')
		}
		j.index[w.path[1].idx] = n
	case w.at("done") && string(b) == "true":
		j.done = true
	}
}

// rewrite appends payload to dst with each text field replaced by what
// its choice's Stream releases. It returns ErrMalformedEvent (wrapped)
// for payloads that are not JSON, and a *BlockError when a block rule
// fired (then dst holds nothing of this payload).
func (j *jsonText) rewrite(dst, payload []byte) ([]byte, error) {
	j.fields, j.done = j.fields[:0], false
	for i := range j.index {
		j.index[i] = -1
	}
	if err := j.w.walk(payload); err != nil {
		return dst, fmt.Errorf("screen: %w: %v", ErrMalformedEvent, err)
	}
	mark, last := len(dst), 0
	for _, f := range j.fields {
		c, err := j.choice(f.pos)
		if err != nil {
			return dst[:mark], err
		}
		j.text = appendUnquote(j.text[:0], payload[f.start:f.end])
		if j.out, err = c.st.Push(j.out[:0], j.text); err != nil {
			return dst[:mark], err
		}
		if !j.done || c.tmpl == nil { // held-back text must not go out in a copy of the final line
			c.tmpl = append(c.tmpl[:0], payload...)
			c.field = [2]int{f.start, f.end}
		}
		dst = append(dst, payload[last:f.start]...)
		dst = appendQuote(dst, j.out)
		last = f.end
	}
	return append(dst, payload[last:]...), nil
}

// choice returns the state of the choice at array position pos.
func (j *jsonText) choice(pos int) (*choice, error) {
	idx := pos
	if pos < MaxChoices && j.index[pos] >= 0 {
		idx = j.index[pos]
	}
	for _, c := range j.choices {
		if c.index == idx {
			return c, nil
		}
	}
	if len(j.choices) >= MaxChoices || pos >= MaxChoices {
		return nil, fmt.Errorf("screen: %w: more than %d choices in one answer", ErrMalformedEvent, MaxChoices)
	}
	c := &choice{st: j.sc.NewStream(), index: idx}
	j.choices = append(j.choices, c)
	return c, nil
}

// flush ends every choice's Stream and returns, per choice with text
// still held back, a payload (its last one, with the text field
// replaced) carrying that text, through emit.
func (j *jsonText) flush(dst []byte, emit func(dst, payload []byte) []byte) ([]byte, error) {
	for _, c := range j.choices {
		var err error
		if j.out, err = c.st.Flush(j.out[:0]); err != nil {
			return dst, err
		}
		if len(j.out) == 0 || c.tmpl == nil {
			continue
		}
		p := append([]byte(nil), c.tmpl[:c.field[0]]...)
		p = appendQuote(p, j.out)
		p = append(p, c.tmpl[c.field[1]:]...)
		dst = emit(dst, p)
	}
	return dst, nil
}

// findings returns what fired in every choice.
func (j *jsonText) findings() []Finding {
	var out []Finding
	for _, c := range j.choices {
		out = append(out, c.st.Findings()...)
	}
	return out
}
