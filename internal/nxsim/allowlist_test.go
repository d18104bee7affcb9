package nxsim

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dexbridge/dexbridge/internal/allowlist"
	"github.com/dexbridge/dexbridge/internal/topic"
)

// TestAllowlistMatchesTheTenantLibrary keeps dexbridge's allow-list
// (config/remote_actions.yaml) and the remote actions nxsim's tenant declares in
// step: every allow-listed action exists, API-enabled, with the same purpose, the
// same inputs (and which are required), the same outputs and platforms.
func TestAllowlistMatchesTheTenantLibrary(t *testing.T) {
	set, err := topic.FilesIn(filepath.Join("..", "..")).Load()
	if err != nil {
		t.Fatal(err)
	}
	list := set.Allowlist()
	byID := map[string]remoteAction{}
	for _, ra := range library() {
		byID[ra.ID] = ra
	}
	for _, a := range list.List() {
		ra, ok := byID[a.ID]
		if !ok {
			t.Errorf("%s is allow-listed but not in nxsim's library", a.ID)
			continue
		}
		if !ra.Targeting.APIEnabled {
			t.Errorf("%s is allow-listed but not API-enabled in the tenant", a.ID)
		}
		purpose := map[allowlist.Purpose]string{allowlist.DataCollection: purposeDataCollection, allowlist.Remediation: purposeRemediation}[a.Purpose]
		if !slices.Contains(ra.Purpose, purpose) {
			t.Errorf("%s: purpose %s, the tenant says %v", a.ID, a.Purpose, ra.Purpose)
		}
		var got, want []string
		for _, in := range a.Inputs {
			got = append(got, in.Name+map[bool]string{true: "!", false: ""}[in.Required])
		}
		for _, in := range ra.ScriptInfo.Inputs {
			want = append(want, in.Name+map[bool]string{true: "!", false: ""}[in.required])
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: inputs %v, the tenant declares %v (! = required)", a.ID, got, want)
		}
		var outs []string
		for _, o := range ra.ScriptInfo.Outputs {
			outs = append(outs, o.Name)
		}
		if len(a.Outputs) > 0 && strings.Join(a.Outputs, ",") != strings.Join(outs, ",") {
			t.Errorf("%s: outputs %v, the tenant declares %v", a.ID, a.Outputs, outs)
		}
		if slices.Contains(a.Platforms, "macOS") && !ra.ScriptInfo.HasScriptMacOs {
			t.Errorf("%s: allow-listed for macOS, the tenant has no macOS script", a.ID)
		}
		if slices.Contains(a.Platforms, "Windows") && !ra.ScriptInfo.HasScriptWindows {
			t.Errorf("%s: allow-listed for Windows, the tenant has no Windows script", a.ID)
		}
	}
}
