package guard

// edit sets a top-level member of a JSON object to val, or removes it
// when val is nil.
type edit struct {
	key string
	val []byte
}

// spliceObject returns obj, a JSON object whose top-level keys are
// distinct and unescaped (plainKeys), with edits applied: an edited
// member's value replaced in place or the member removed, members not
// present added before the closing brace, and every other byte as it
// was, so that the model server reads the caller's JSON as sent. It
// reports false for anything it cannot read (then re-encode).
func spliceObject(obj []byte, edits []edit) ([]byte, bool) {
	s := jscan{b: obj}
	if s.peek() != '{' {
		return nil, false
	}
	out := make([]byte, 0, len(obj)+32*len(edits))
	out = append(out, obj[:s.i+1]...)
	done := make([]bool, len(edits))
	members := 0
	emit := func(parts ...[]byte) {
		if members++; members > 1 {
			out = append(out, ',')
		}
		for _, p := range parts {
			out = append(out, p...)
		}
	}
	delim := s.i // of the member to come: '{' or ','
	for more := s.enter('{', '}'); more; more = s.more('}') {
		start := delim + 1 // the member with the white space before it
		k, _ := s.key()
		s.peek()
		valStart := s.i
		s.skip(1)
		valEnd := s.i
		s.peek()
		if !s.ok() {
			return nil, false
		}
		delim = s.i
		i := editOf(edits, k)
		switch {
		case i < 0:
			emit(obj[start:delim])
		case edits[i].val != nil:
			emit(obj[start:valStart], edits[i].val, obj[valEnd:delim])
		}
		if i >= 0 {
			done[i] = true
		}
	}
	if s.end(); !s.ok() {
		return nil, false
	}
	closing := lastBrace(obj)
	for i, e := range edits {
		if !done[i] && e.val != nil {
			emit([]byte(`"`+e.key+`":`), e.val)
			done[i] = true
		}
	}
	return append(out, obj[closing:]...), true
}

// editOf returns the index of the edit of key k, or -1.
func editOf(edits []edit, k []byte) int {
	for i := range edits {
		if edits[i].key == string(k) {
			return i
		}
	}
	return -1
}

// lastBrace returns the index of the '}' closing a valid object.
func lastBrace(obj []byte) int {
	i := len(obj) - 1
	for i > 0 && obj[i] != '}' {
		i--
	}
	return i
}
