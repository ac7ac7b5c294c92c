package ui

import (
	"fmt"
	"strings"
)

// A line diff for showing policy changes: the longest common subsequence
// of the two texts' lines (after trimming their common head and tail),
// shown as hunks with a few lines of context. Texts too different to
// compare line by line within maxDiffCells show as one replacement.

const (
	diffContext  = 3
	maxDiffCells = 4 << 20 // bounds the LCS table (4 bytes a cell)
)

// diffLine is one line of a diff. Op is ' ' (unchanged), '-' (only in
// the old text) or '+' (only in the new); Old and New are its line
// numbers in each text, 0 where it has none.
type diffLine struct {
	Op       string
	Old, New int
	Text     string
}

// Class is the line's CSS class.
func (l diffLine) Class() string {
	return map[string]string{"+": "add", "-": "del"}[l.Op]
}

// diffHunk is a run of changes with their context.
type diffHunk struct {
	Header string // "@@ -a,b +c,d @@"
	Lines  []diffLine
}

// lineDiff is the difference between two texts.
type lineDiff struct {
	Hunks          []diffHunk
	Added, Removed int
}

// Same reports whether the texts had no differing lines.
func (d *lineDiff) Same() bool { return d.Added == 0 && d.Removed == 0 }

// splitLines splits text into lines; a final newline ends the last line
// rather than starting an empty one.
func splitLines(text string) []string {
	if text == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(text, "\n"), "\n")
}

// diffLines compares old and new line by line.
func diffLines(old, new string) *lineDiff {
	ops := diffOps(splitLines(old), splitLines(new))
	d := &lineDiff{}
	for _, l := range ops {
		switch l.Op {
		case "+":
			d.Added++
		case "-":
			d.Removed++
		}
	}
	d.Hunks = hunks(ops)
	return d
}

// diffOps returns every line of a and b as unchanged, removed or added.
func diffOps(a, b []string) []diffLine {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var out []diffLine
	for i := 0; i < pre; i++ {
		out = append(out, diffLine{Op: " ", Old: i + 1, New: i + 1, Text: a[i]})
	}
	out = append(out, middle(a[pre:len(a)-suf], b[pre:len(b)-suf], pre)...)
	for i := 0; i < suf; i++ {
		ai, bi := len(a)-suf+i, len(b)-suf+i
		out = append(out, diffLine{Op: " ", Old: ai + 1, New: bi + 1, Text: a[ai]})
	}
	return out
}

// middle diffs the differing middles of two texts, which start after
// line off of both.
func middle(a, b []string, off int) []diffLine {
	var out []diffLine
	del := func(i int) { out = append(out, diffLine{Op: "-", Old: off + i + 1, Text: a[i]}) }
	add := func(j int) { out = append(out, diffLine{Op: "+", New: off + j + 1, Text: b[j]}) }
	n, m := len(a), len(b)
	if (n+1)*(m+1) > maxDiffCells {
		for i := range a {
			del(i)
		}
		for j := range b {
			add(j)
		}
		return out
	}
	// lcs[i*(m+1)+j] is the LCS length of a[i:] and b[j:].
	w := m + 1
	lcs := make([]int32, (n+1)*w)
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
			} else {
				lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
			}
		}
	}
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			out = append(out, diffLine{Op: " ", Old: off + i + 1, New: off + j + 1, Text: a[i]})
			i, j = i+1, j+1
		case i < n && (j == m || lcs[(i+1)*w+j] >= lcs[i*w+j+1]):
			del(i)
			i++
		default:
			add(j)
			j++
		}
	}
	return out
}

// hunks groups changed lines with up to diffContext unchanged lines
// around them.
func hunks(ops []diffLine) []diffHunk {
	var out []diffHunk
	for i := 0; i < len(ops); {
		if ops[i].Op == " " {
			i++
			continue
		}
		start := max(0, i-diffContext)
		end := i
		for end < len(ops) {
			if ops[end].Op != " " {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].Op == " " {
				run++
			}
			if run == len(ops) || run-end > 2*diffContext {
				end = min(end+diffContext, len(ops))
				break
			}
			end = run
		}
		out = append(out, diffHunk{Header: hunkHeader(ops[start:end]), Lines: ops[start:end]})
		i = end
	}
	return out
}

// hunkHeader is the unified-diff "@@ -a,b +c,d @@" line of a hunk.
func hunkHeader(ls []diffLine) string {
	oldStart, newStart, oldN, newN := 0, 0, 0, 0
	for _, l := range ls {
		if l.Old > 0 {
			if oldStart == 0 {
				oldStart = l.Old
			}
			oldN++
		}
		if l.New > 0 {
			if newStart == 0 {
				newStart = l.New
			}
			newN++
		}
	}
	return fmt.Sprintf("@@ -%d,%d +%d,%d @@", oldStart, oldN, newStart, newN)
}
