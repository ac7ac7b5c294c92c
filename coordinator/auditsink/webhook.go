package auditsink

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// SignatureHeader carries a webhook body's signature:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the secret>".
// A receiver recomputes v1 from the raw body and refuses a mismatch or a
// t too far from its clock (replays).
const SignatureHeader = "Moat-Signature"

// Webhook body formats.
const (
	FormatJSON      = "json"       // {"events": [Event, …]}
	FormatSplunkHEC = "splunk-hec" // Splunk HTTP Event Collector, one JSON object per event
)

// Webhook posts batches of events over HTTPS, signed with HMAC-SHA256.
type Webhook struct {
	// URL is where batches go; it must be https.
	URL string
	// Secret keys the signature (SignatureHeader); required.
	Secret []byte
	// Format is FormatJSON (the default, "") or FormatSplunkHEC.
	Format string
	// SplunkToken is sent as "Authorization: Splunk <token>" when set.
	SplunkToken string
	// Client sends the requests; nil means one with a 30 s timeout.
	Client *http.Client
	// Now is the signature's clock; nil means time.Now.
	Now func() time.Time
}

// Check reports what is wrong with w's settings.
func (w *Webhook) Check() error {
	u, err := url.Parse(w.URL)
	switch {
	case err != nil || u.Host == "":
		return fmt.Errorf("webhook URL %q: want https://host/path", w.URL)
	case u.Scheme != "https":
		return fmt.Errorf("webhook URL %q: want https (the records leave the machine)", w.URL)
	case len(w.Secret) < 16:
		return errors.New("webhook secret: want at least 16 bytes")
	case w.Format != "" && w.Format != FormatJSON && w.Format != FormatSplunkHEC:
		return fmt.Errorf("webhook format %q: want %s or %s", w.Format, FormatJSON, FormatSplunkHEC)
	}
	return nil
}

// Deliver implements Sink: one signed POST; any 2xx answer takes the batch.
func (w *Webhook) Deliver(ctx context.Context, events []Event) error {
	body, err := w.body(events)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, Sign(w.Secret, now(), body))
	if w.SplunkToken != "" {
		req.Header.Set("Authorization", "Splunk "+w.SplunkToken)
	}
	client := w.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

func (w *Webhook) body(events []Event) ([]byte, error) {
	if w.Format != FormatSplunkHEC {
		return json.Marshal(struct {
			Events []Event `json:"events"`
		}{events})
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, e := range events {
		err := enc.Encode(hecEvent{
			Time: float64(e.Time.UnixMicro()) / 1e6, Source: "moat", SourceType: "moat:" + e.Stream, Event: e,
		})
		if err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// hecEvent is one event in Splunk's HTTP Event Collector format.
type hecEvent struct {
	Time       float64 `json:"time"`
	Source     string  `json:"source"`
	SourceType string  `json:"sourcetype"`
	Event      Event   `json:"event"`
}

// Sign returns the SignatureHeader value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret []byte, ts string, body []byte) string {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts + "."))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// Verify checks a SignatureHeader value for body at now, allowing a
// clock difference of skew: what a receiver does.
func Verify(secret []byte, header string, body []byte, now time.Time, skew time.Duration) error {
	var ts, sig string
	for _, part := range bytes.Split([]byte(header), []byte(",")) {
		k, v, _ := bytes.Cut(part, []byte("="))
		switch string(k) {
		case "t":
			ts = string(v)
		case "v1":
			sig = string(v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("signature header: want t=<unix>,v1=<hex>")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > skew || d < -skew {
		return fmt.Errorf("signature made at %s, too far from now", time.Unix(sec, 0).UTC())
	}
	if !hmac.Equal([]byte(sig), []byte(mac(secret, ts, body))) {
		return errors.New("signature does not match")
	}
	return nil
}
