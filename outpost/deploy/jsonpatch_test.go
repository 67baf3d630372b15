package deploy

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestApplyPatch(t *testing.T) {
	const doc = `{"a": {"b": [1, 2, 3], "c": "x"}, "d~e/f": true}`
	tests := []struct {
		name  string
		patch string
		want  string
		err   string
	}{
		{name: "add member", patch: `[{"op": "add", "path": "/a/n", "value": {"k": null}}]`,
			want: `{"a": {"b": [1, 2, 3], "c": "x", "n": {"k": null}}, "d~e/f": true}`},
		{name: "add into array", patch: `[{"op": "add", "path": "/a/b/1", "value": 9}]`,
			want: `{"a": {"b": [1, 9, 2, 3], "c": "x"}, "d~e/f": true}`},
		{name: "append", patch: `[{"op": "add", "path": "/a/b/-", "value": 4}]`,
			want: `{"a": {"b": [1, 2, 3, 4], "c": "x"}, "d~e/f": true}`},
		{name: "replace", patch: `[{"op": "replace", "path": "/a/c", "value": "y"}]`,
			want: `{"a": {"b": [1, 2, 3], "c": "y"}, "d~e/f": true}`},
		{name: "remove array item", patch: `[{"op": "remove", "path": "/a/b/0"}]`,
			want: `{"a": {"b": [2, 3], "c": "x"}, "d~e/f": true}`},
		{name: "escaped pointer", patch: `[{"op": "remove", "path": "/d~0e~1f"}]`,
			want: `{"a": {"b": [1, 2, 3], "c": "x"}}`},
		{name: "move", patch: `[{"op": "move", "from": "/a/c", "path": "/c"}]`,
			want: `{"a": {"b": [1, 2, 3]}, "c": "x", "d~e/f": true}`},
		{name: "copy", patch: `[{"op": "copy", "from": "/a/b", "path": "/b"}, {"op": "add", "path": "/b/-", "value": 4}]`,
			want: `{"a": {"b": [1, 2, 3], "c": "x"}, "b": [1, 2, 3, 4], "d~e/f": true}`},
		{name: "test passes", patch: `[{"op": "test", "path": "/a/b", "value": [1, 2, 3.0]}]`, want: doc},
		{name: "add null", patch: `[{"op": "add", "path": "/z", "value": null}]`,
			want: `{"a": {"b": [1, 2, 3], "c": "x"}, "d~e/f": true, "z": null}`},
		{name: "test fails", patch: `[{"op": "test", "path": "/a/c", "value": "nope"}]`, err: "test failed"},
		{name: "replace missing", patch: `[{"op": "replace", "path": "/a/zz", "value": 1}]`, err: "no member"},
		{name: "remove missing", patch: `[{"op": "remove", "path": "/zz"}]`, err: "no member"},
		{name: "index out of range", patch: `[{"op": "add", "path": "/a/b/9", "value": 1}]`, err: "out of range"},
		{name: "leading zero index", patch: `[{"op": "remove", "path": "/a/b/01"}]`, err: "bad array index"},
		{name: "missing parent", patch: `[{"op": "add", "path": "/x/y", "value": 1}]`, err: "no member"},
		{name: "into scalar", patch: `[{"op": "add", "path": "/a/c/x", "value": 1}]`, err: "not an object or array"},
		{name: "no value", patch: `[{"op": "add", "path": "/x"}]`, err: "missing"},
		{name: "relative path", patch: `[{"op": "remove", "path": "a"}]`, err: "does not start with /"},
		{name: "move into itself", patch: `[{"op": "move", "from": "/a", "path": "/a/b/x"}]`, err: "into itself"},
		// The first failure stops the patch; nothing half-applied is returned.
		{name: "stops at first error", patch: `[{"op": "remove", "path": "/a"}, {"op": "remove", "path": "/a"}]`, err: "operation 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ops []map[string]any
			if err := json.Unmarshal([]byte(tt.patch), &ops); err != nil {
				t.Fatal(err)
			}
			converted, err := patchesFromSettings(map[string][]map[string]any{"x": ops})
			if err != nil {
				t.Fatal(err)
			}
			d, err := decodeJSON([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			got, err := applyPatch(d, converted["x"])
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want, _ := decodeJSON([]byte(tt.want))
			if !jsonEqual(got, want) {
				g, _ := json.Marshal(got)
				t.Errorf("got %s\nwant %s", g, tt.want)
			}
		})
	}
}

// Patching the same component twice must not leak one render's values into
// the next through shared patch values.
func TestPatchValuesAreNotShared(t *testing.T) {
	in := ldapInput()
	in.Settings.KubernetesJSONPatches = map[string][]map[string]any{
		ComponentDeployment: {
			{"op": "add", "path": "/spec/template/metadata/annotations", "value": map[string]any{}},
			{"op": "add", "path": "/spec/template/metadata/annotations/a", "value": "1"},
		},
	}
	first, err := Kubernetes(in)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Kubernetes(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(first) != string(second) {
		t.Error("rendering twice gives different output")
	}
}
