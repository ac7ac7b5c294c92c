package screen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// ErrClassifier wraps every failure of the classifier hook.
var ErrClassifier = errors.New("classifier")

// Classifier asks a local HTTP classifier (for example a prompt-injection
// model served on the node) for a score: POST {"text": ...} to URL,
// answer {"score": 0..1}. The built-in heuristics stay the floor: the
// guard blocks when they do or when the classifier flags.
type Classifier struct {
	// URL of the classifier endpoint. Required.
	URL string
	// Timeout per call; 0 means 200 ms.
	Timeout time.Duration
	// Threshold at or above which a score flags the text; 0 means 0.5.
	Threshold float64
	// FailClosed makes an unreachable, slow or malformed classifier flag
	// the text; false (fail open) lets it pass on the heuristics alone.
	FailClosed bool
	// Client makes the calls; nil means a client without proxies.
	Client *http.Client
}

// Verdict is the classifier's answer for one text.
type Verdict struct {
	Score   float64 // the score, or -1 when the call failed
	Flagged bool    // score ≥ threshold, or the call failed and FailClosed is set
	Err     error   // why the call failed (wraps ErrClassifier), or nil
}

// maxClassifierBody bounds the classifier's answer.
const maxClassifierBody = 64 << 10

// defaultClient does not use proxies: the classifier is local.
var defaultClient = &http.Client{Transport: &http.Transport{Proxy: nil}}

// Check scores text. It never returns an error on its own; a failed call
// is reported in Verdict.Err and decided by FailClosed.
func (c *Classifier) Check(ctx context.Context, text string) Verdict {
	score, err := c.score(ctx, text)
	if err != nil {
		return Verdict{Score: -1, Flagged: c.FailClosed, Err: fmt.Errorf("%w: %w", ErrClassifier, err)}
	}
	th := c.Threshold
	if th == 0 {
		th = 0.5
	}
	return Verdict{Score: score, Flagged: score >= th}
}

func (c *Classifier) score(ctx context.Context, text string) (float64, error) {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 200 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, _ := json.Marshal(struct {
		Text string `json:"text"`
	}{text})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	client := c.Client
	if client == nil {
		client = defaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %s", resp.Status)
	}
	var out struct {
		Score *float64 `json:"score"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxClassifierBody)).Decode(&out); err != nil {
		return 0, fmt.Errorf("malformed answer: %w", err)
	}
	if out.Score == nil || *out.Score < 0 || *out.Score > 1 {
		return 0, errors.New(`malformed answer: want {"score": 0..1}`)
	}
	return *out.Score, nil
}
