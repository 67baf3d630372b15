package akoutpost_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// maxGoDirective is the newest Go an importer may be asked for: hosts
// such as authentik's server build with the previous Go release.
const maxGoDirective = "1.25"

// TestImporterBuild builds a tiny host module that imports every library
// package a host uses, as a host author would with `go get`: its go
// directive must not be raised past maxGoDirective, and none of the
// modules only our tests need (browser automation, compose loaders,
// Kubernetes and Docker clients, leak checks) may enter its build.
func TestImporterBuild(t *testing.T) {
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	ours, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if v := directive(string(ours), "go"); goNewer(v, maxGoDirective) {
		t.Fatalf("go.mod says go %s; importers would need a Go newer than %s", v, maxGoDirective)
	}

	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/host\n\ngo "+maxGoDirective+".0\n\nrequire github.com/akoutpost/akoutpost v0.0.0\n\nreplace github.com/akoutpost/akoutpost => "+root+"\n")
	write("main.go", `package main

import (
	_ "github.com/akoutpost/akoutpost/ldap"
	_ "github.com/akoutpost/akoutpost/metrics"
	_ "github.com/akoutpost/akoutpost/outpost"
	_ "github.com/akoutpost/akoutpost/outpost/flow"
	_ "github.com/akoutpost/akoutpost/proxy"
	_ "github.com/akoutpost/akoutpost/radius"
)

func main() {}
`)
	// Our go.sum holds every hash the host needs, so no network is used.
	sum, err := os.ReadFile("go.sum")
	if err != nil {
		t.Fatal(err)
	}
	write("go.sum", string(sum))
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("mod", "tidy")
	host, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if v := directive(string(host), "go"); goNewer(v, maxGoDirective) {
		t.Fatalf("importing the library raised the host's go directive to %s", v)
	}
	if v := directive(string(host), "toolchain"); v != "" {
		t.Fatalf("importing the library added a toolchain line: %s", v)
	}
	deps := run("list", "-deps", "-f", "{{with .Module}}{{.Path}}{{end}}", ".")
	for _, heavy := range []string{"github.com/chromedp/", "github.com/compose-spec/", "k8s.io/", "github.com/moby/", "go.uber.org/goleak", "sigs.k8s.io/"} {
		for line := range strings.Lines(deps) {
			if strings.HasPrefix(strings.TrimSpace(line), heavy) {
				t.Errorf("the host's build pulls in %s", strings.TrimSpace(line))
				break
			}
		}
	}
	run("build", "-o", os.DevNull, ".")
}

// directive returns the value of a go.mod line such as "go 1.25.0".
func directive(gomod, name string) string {
	for line := range strings.Lines(gomod) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			return f[1]
		}
	}
	return ""
}

// goNewer reports whether Go version a (such as "1.26.0") is newer than
// the release b (such as "1.25").
func goNewer(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < 2; i++ {
		x, y := part(pa, i), part(pb, i)
		if x != y {
			return x > y
		}
	}
	return false
}

func part(p []string, i int) int {
	if i >= len(p) {
		return 0
	}
	n := 0
	for _, c := range p[i] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}
