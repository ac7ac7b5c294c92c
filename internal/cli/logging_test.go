package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestLoggingFlags(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		wantJSON bool
		wantErr  string
	}{
		{args: nil},
		{args: []string{"--log-format", "json", "--log-level", "debug"}, wantJSON: true},
		{args: []string{"--log-format=TEXT"}},
		{args: []string{"--log-format", "logfmt"}, wantErr: "want text or json"},
		{args: []string{"--log-level", "verbose"}, wantErr: "want debug, info, warn or error"},
	} {
		var l Logging
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		l.Flags(fs)
		err := fs.Parse(tc.args)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: err %v, want %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		var buf bytes.Buffer
		l.Logger(&buf).Info("hello", "k", "v")
		line := strings.TrimSpace(buf.String())
		var obj map[string]any
		isJSON := json.Unmarshal([]byte(line), &obj) == nil
		if isJSON != tc.wantJSON {
			t.Errorf("%v: line %q: JSON %v, want %v", tc.args, line, isJSON, tc.wantJSON)
		}
		if isJSON && (obj["msg"] != "hello" || obj["k"] != "v") {
			t.Errorf("%v: JSON line %q lacks msg or attribute", tc.args, line)
		}
		if !isJSON && !strings.Contains(line, "msg=hello k=v") {
			t.Errorf("%v: text line %q", tc.args, line)
		}
	}
}
