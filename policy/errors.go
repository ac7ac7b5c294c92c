package policy

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Pos is a position in a policy file. Line and Col count from 1; Col counts
// bytes. The zero Pos means "no particular place".
type Pos struct {
	Line int `json:"line"`
	Col  int `json:"col"`
}

// IsValid reports whether p names a place in the file.
func (p Pos) IsValid() bool { return p.Line > 0 }

// Error is one problem with a policy, at a place in its text. Its message
// says what is wrong and, where it can, what to do about it.
type Error struct {
	File      string
	Line, Col int // 0 when the problem has no single place
	Msg       string
}

// Error formats e as FILE:LINE:COL: message, the form editors and CI logs
// link to.
func (e *Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg)
	case e.File != "":
		return e.File + ": " + e.Msg
	}
	return e.Msg
}

// ErrorList is every problem found in one policy, in file order. Parse,
// RunTests and Check return one (as an error) when anything is wrong.
type ErrorList []*Error

// Error prints one problem per line.
func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap returns the individual errors, so errors.As finds an *Error.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// sorted returns l ordered by position, or nil when l is empty.
func (l ErrorList) sorted() error {
	if len(l) == 0 {
		return nil
	}
	slices.SortStableFunc(l, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
	return l
}

// lineIndex turns byte offsets into positions.
type lineIndex []int // offsets at which each line starts

func newLineIndex(src []byte) lineIndex {
	idx := lineIndex{0}
	for i, c := range src {
		if c == '\n' {
			idx = append(idx, i+1)
		}
	}
	return idx
}

// pos returns the position of byte offset off.
func (li lineIndex) pos(off int) Pos {
	line := sort.Search(len(li), func(i int) bool { return li[i] > off }) - 1
	if line < 0 {
		line = 0
	}
	return Pos{Line: line + 1, Col: off - li[line] + 1}
}
