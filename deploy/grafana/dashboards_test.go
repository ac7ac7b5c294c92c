package grafana

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// TestDashboards: the files in dashboards/ are what the builders make
// (UPDATE_DASHBOARDS=1 rewrites them), and each decodes strictly into the
// SDK's Dashboard and passes its Validate.
func TestDashboards(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	for name, b := range Dashboards() {
		d, err := b.Build()
		if err != nil {
			t.Fatalf("%s: build: %v", name, err)
		}
		want, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, '\n')
		path := filepath.Join("dashboards", name)
		if os.Getenv("UPDATE_DASHBOARDS") != "" {
			os.MkdirAll("dashboards", 0o755)
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (UPDATE_DASHBOARDS=1 go test writes it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not what the builder makes; run UPDATE_DASHBOARDS=1 go test", path)
		}
		var strict dashboard.Dashboard
		if err := noErrors(strict.UnmarshalJSONStrict(got)); err != nil {
			t.Errorf("%s: strict decoding: %v", path, err)
			continue
		}
		if err := noErrors(strict.Validate()); err != nil {
			t.Errorf("%s: %v", path, err)
		}
		if len(strict.Panels) < 6 {
			t.Errorf("%s has %d panels", path, len(strict.Panels))
		}
	}
}

// noErrors undoes an SDK quirk: its strict decoder returns an empty
// cog.BuildErrors (a non-nil error) when all went well.
func noErrors(err error) error {
	if be, ok := err.(cog.BuildErrors); ok && len(be) == 0 {
		return nil
	}
	return err
}
