package akoutpost_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

type goPackage struct {
	ImportPath string
	Doc        string
	Imports    []string
	Name       string
}

// listPackages asks the go command for every package of the module.
func listPackages(t *testing.T) []goPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []goPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p goPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 2 {
		t.Fatalf("go list found %d packages", len(pkgs))
	}
	return pkgs
}

// Every package, commands and examples included, says what it holds.
func TestEveryPackageHasDocComment(t *testing.T) {
	for _, p := range listPackages(t) {
		want := "Package " + p.Name + " "
		if p.Name == "main" {
			want = "" // commands start "Command ..." or name the program
		}
		if p.Doc == "" || !strings.HasPrefix(p.Doc, want) {
			t.Errorf("%s: package comment %q should start %q", p.ImportPath, p.Doc, want)
		}
	}
}

// The layering of DESIGN.md: metrics <- outpost <- outpost/flow <- proxy, ldap,
// radius <- cmd, examples. The core must not depend on a provider, so that a
// third-party provider is a peer of ours, and the test core must not either.
func TestPackageLayering(t *testing.T) {
	const mod = "github.com/akoutpost/akoutpost"
	forbidden := map[string][]string{
		mod + "/metrics":             {mod + "/outpost", mod + "/proxy", mod + "/ldap", mod + "/radius"},
		mod + "/outpost":             {mod + "/outpost/flow", mod + "/proxy", mod + "/ldap", mod + "/radius", mod + "/outpost/outposttest"},
		mod + "/outpost/flow":        {mod + "/proxy", mod + "/ldap", mod + "/radius"},
		mod + "/outpost/outposttest": {mod + "/proxy", mod + "/ldap", mod + "/radius"},
		mod + "/ldap/ldapserver":     {mod + "/outpost", mod + "/proxy", mod + "/ldap", mod + "/radius"},
		mod + "/proxy":               {mod + "/ldap", mod + "/radius"},
		mod + "/ldap":                {mod + "/proxy", mod + "/radius"},
		mod + "/radius":              {mod + "/proxy", mod + "/ldap"},
	}
	for _, p := range listPackages(t) {
		key := ""
		for k := range forbidden {
			// The most specific rule applies: outpost/flow has its own.
			if (p.ImportPath == k || strings.HasPrefix(p.ImportPath, k+"/")) && len(k) > len(key) {
				key = k
			}
		}
		for _, imp := range p.Imports {
			for _, b := range forbidden[key] {
				if imp == b || strings.HasPrefix(imp, b+"/") {
					t.Errorf("%s imports %s, which DESIGN.md's layering forbids", p.ImportPath, imp)
				}
			}
		}
	}
}
