package reconcile

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/deploy"
)

const testUUID = "4a8b2f1e-93c5-4d6a-b7e0-5f21c8d9a3b4"

// dockerInput is an LDAP outpost on the host network running testImage. A
// fresh UUID per test keeps the tests' containers apart.
func dockerInput(t *testing.T, uuid string) deploy.Input {
	s := outpost.DefaultSettings()
	s.AuthentikHost = "HTTP://Core.Example:9000/"
	s.AuthentikHostBrowser = "https://core.example/"
	s.ContainerImage = testImage
	s.DockerNetwork = "host"
	s.ObjectNamingTemplate = "ak-outpost-%(name)s"
	s.DockerLabels = map[string]string{"team": "identity"}
	return deploy.Input{
		Name:     "LDAP " + strings.ReplaceAll(t.Name(), "/", " "),
		UUID:     uuid,
		Type:     deploy.TypeLDAP,
		Token:    "secret-token-" + uuid[:8],
		Settings: s,
	}
}

func newDocker(t *testing.T, host, connection string) *Docker {
	t.Helper()
	d, err := NewDocker(DockerConfig{Host: host, Connection: connection})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func inspect(t *testing.T, e *engine, name string) container.InspectResponse {
	t.Helper()
	r, err := e.cli.ContainerInspect(context.Background(), name, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("inspecting %s: %v", name, err)
	}
	return r.Container
}

func mustApply(t *testing.T, d *Docker, in deploy.Input) Result {
	t.Helper()
	res, err := d.Apply(context.Background(), in)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return res
}

func TestDockerCreatesUpdatesAndMakesNoWriteWhenUnchanged(t *testing.T) {
	e := dockerEngine(t)
	cnt := e.counter(t)
	d := newDocker(t, cnt.host(), "conn-a")
	ctx := context.Background()
	in := dockerInput(t, "11111111-93c5-4d6a-b7e0-5f21c8d9a3b4")
	t.Cleanup(func() { d.Delete(context.Background(), in.UUID) })

	res := mustApply(t, d, in)
	name := "ak-outpost-ldap-testdockercreatesupdatesandmakesnowritewhenunchanged"
	if !slices.Equal(res.Created, []string{"container/" + name}) || res.Writes() != 1 {
		t.Fatalf("first apply: %+v", res)
	}
	c := inspect(t, e, name)
	if !c.State.Running {
		t.Errorf("container is not running: %+v", c.State)
	}
	if c.Config.Image != testImage {
		t.Errorf("image %q", c.Config.Image)
	}
	for _, kv := range []string{"AUTHENTIK_HOST=http://core.example:9000/", "AUTHENTIK_INSECURE=false",
		"AUTHENTIK_TOKEN=secret-token-11111111", "AUTHENTIK_HOST_BROWSER=https://core.example/"} {
		if !slices.Contains(c.Config.Env, kv) {
			t.Errorf("env lacks %s: %v", kv, c.Config.Env)
		}
	}
	for k, v := range map[string]string{"team": "identity", "io.goauthentik.outpost-uuid": "1111111193c54d6ab7e05f21c8d9a3b4",
		LabelManagedBy: ManagedBy, LabelConnection: "conn-a"} {
		if c.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Config.Labels[k], v)
		}
	}
	if c.HostConfig.RestartPolicy.Name != "unless-stopped" || c.HostConfig.NetworkMode != "host" {
		t.Errorf("restart %q network %q", c.HostConfig.RestartPolicy.Name, c.HostConfig.NetworkMode)
	}
	if h := c.Config.Healthcheck; h == nil || !slices.Equal(h.Test, []string{"CMD", "akoutpost", "healthcheck"}) ||
		h.Interval != 5*time.Second || h.Retries != 20 || h.StartPeriod != 3*time.Second {
		t.Errorf("health check %+v", c.Config.Healthcheck)
	}

	// Unchanged: nothing but reads reach the engine.
	before := cnt.writes.Load()
	for range 3 {
		if res := mustApply(t, d, in); res.Writes() != 0 {
			t.Fatalf("no-op apply changed %+v", res)
		}
	}
	if n := cnt.writes.Load() - before; n != 0 {
		var paths []string
		cnt.paths.Range(func(k, _ any) bool { paths = append(paths, k.(string)); return true })
		t.Fatalf("no-op applies made %d writes to the engine: %v", n, paths)
	}

	// A changed label re-creates the container with it.
	in.Settings.DockerLabels = map[string]string{"team": "platform"}
	if res := mustApply(t, d, in); !slices.Equal(res.Updated, []string{"container/" + name}) {
		t.Fatalf("label change: %+v", res)
	}
	if got := inspect(t, e, name); got.Config.Labels["team"] != "platform" || got.ID == c.ID || !got.State.Running {
		t.Errorf("after a label change: id %s (was %s), team %q, running %v", got.ID, c.ID, got.Config.Labels["team"], got.State.Running)
	}

	// A changed image (another tag of the same image) too.
	if _, err := e.cli.ImageTag(ctx, client.ImageTagOptions{Source: testImage, Target: "akoutpost-reconcile-test:2"}); err != nil {
		t.Fatal(err)
	}
	in.Settings.ContainerImage = "akoutpost-reconcile-test:2"
	if res := mustApply(t, d, in); res.Writes() != 1 {
		t.Fatalf("image change: %+v", res)
	}
	if got := inspect(t, e, name); got.Config.Image != "akoutpost-reconcile-test:2" {
		t.Errorf("image is %q", got.Config.Image)
	}

	// Another naming template: the old container goes, the new one comes.
	in.Settings.ObjectNamingTemplate = "renamed-%(uuid)s"
	res = mustApply(t, d, in)
	if !slices.Equal(res.Removed, []string{"container/" + name}) || !slices.Equal(res.Created, []string{"container/renamed-1111111193c54d6ab7e05f21c8d9a3b4"}) {
		t.Fatalf("rename: %+v", res)
	}

	res, err := d.Delete(ctx, in.UUID)
	if err != nil || !slices.Equal(res.Removed, []string{"container/renamed-1111111193c54d6ab7e05f21c8d9a3b4"}) {
		t.Fatalf("Delete: %+v, %v", res, err)
	}
	if left, _ := d.Outposts(ctx); len(left) != 0 {
		t.Errorf("containers left after Delete: %v", left)
	}
}

// Someone stops, edits, renames or removes the container by hand: the next
// reconcile restores it.
func TestDockerRestoresHandChanges(t *testing.T) {
	e := dockerEngine(t)
	d := newDocker(t, "unix://"+e.sock, "conn-b")
	ctx := context.Background()
	in := dockerInput(t, "22222222-93c5-4d6a-b7e0-5f21c8d9a3b4")
	t.Cleanup(func() { d.Delete(context.Background(), in.UUID) })
	mustApply(t, d, in)
	name := "ak-outpost-ldap-testdockerrestoreshandchanges"

	cases := []struct {
		name   string
		change func(t *testing.T)
		want   func(r Result) bool
	}{
		{"stopped", func(t *testing.T) {
			if _, err := e.cli.ContainerStop(ctx, name, client.ContainerStopOptions{}); err != nil {
				t.Fatal(err)
			}
		}, func(r Result) bool { return slices.Equal(r.Updated, []string{"container/" + name}) }},
		{"restart policy changed", func(t *testing.T) {
			if _, err := e.cli.ContainerUpdate(ctx, name, client.ContainerUpdateOptions{
				RestartPolicy: &container.RestartPolicy{Name: container.RestartPolicyDisabled},
			}); err != nil {
				t.Fatal(err)
			}
		}, func(r Result) bool { return slices.Equal(r.Updated, []string{"container/" + name}) }},
		{"renamed", func(t *testing.T) {
			if _, err := e.cli.ContainerRename(ctx, name, client.ContainerRenameOptions{NewName: name + "-old"}); err != nil {
				t.Fatal(err)
			}
		}, func(r Result) bool {
			return slices.Equal(r.Removed, []string{"container/" + name + "-old"}) && slices.Equal(r.Created, []string{"container/" + name})
		}},
		{"removed", func(t *testing.T) {
			if _, err := e.cli.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true}); err != nil {
				t.Fatal(err)
			}
		}, func(r Result) bool { return slices.Equal(r.Created, []string{"container/" + name}) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.change(t)
			res := mustApply(t, d, in)
			if !tc.want(res) {
				t.Fatalf("result %+v", res)
			}
			c := inspect(t, e, name)
			if !c.State.Running || c.HostConfig.RestartPolicy.Name != "unless-stopped" {
				t.Errorf("not restored: running %v, restart %q", c.State.Running, c.HostConfig.RestartPolicy.Name)
			}
			if res := mustApply(t, d, in); res.Writes() != 0 {
				t.Errorf("second apply after restoring changed %+v", res)
			}
		})
	}
}

// Containers the integration did not create are never changed or removed:
// one squatting the name, one with authentik's outpost label, and one of
// another service connection on the same engine.
func TestDockerLeavesForeignContainersAlone(t *testing.T) {
	e := dockerEngine(t)
	ctx := context.Background()
	d := newDocker(t, "unix://"+e.sock, "conn-c")
	other := newDocker(t, "unix://"+e.sock, "conn-other")
	in := dockerInput(t, "33333333-93c5-4d6a-b7e0-5f21c8d9a3b4")
	name := "ak-outpost-ldap-testdockerleavesforeigncontainersalone"

	foreign, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{Image: testImage, Labels: map[string]string{
			"io.goauthentik.outpost-uuid": "3333333393c54d6ab7e05f21c8d9a3b4",
		}},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.cli.ContainerRemove(context.Background(), foreign.ID, client.ContainerRemoveOptions{Force: true})
	})
	if _, err := d.Apply(ctx, in); err == nil || !strings.Contains(err.Error(), "did not create") {
		t.Fatalf("Apply over a foreign container: %v", err)
	}
	if res, err := d.Delete(ctx, in.UUID); err != nil || res.Writes() != 0 {
		t.Fatalf("Delete touched a foreign container: %+v, %v", res, err)
	}
	if got := inspect(t, e, name); got.ID != foreign.ID {
		t.Fatalf("the foreign container was replaced")
	}

	// Another connection's container of the same outpost, under another
	// name, is not this connection's to remove.
	in2 := in
	in2.Settings.ObjectNamingTemplate = "other-%(name)s"
	if _, err := other.Apply(ctx, in2); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Delete(context.Background(), in.UUID) })
	if res, err := d.Delete(ctx, in.UUID); err != nil || res.Writes() != 0 {
		t.Fatalf("Delete removed another connection's container: %+v, %v", res, err)
	}
	if got, _ := other.Outposts(ctx); !slices.Equal(got, []string{"3333333393c54d6ab7e05f21c8d9a3b4"}) {
		t.Fatalf("other connection's outposts: %v", got)
	}
}

func TestDockerPortsAndNetwork(t *testing.T) {
	e := dockerEngine(t)
	ctx := context.Background()
	if _, err := e.cli.NetworkCreate(ctx, "akrt-net", client.NetworkCreateOptions{Driver: "bridge"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.cli.NetworkRemove(context.Background(), "akrt-net", client.NetworkRemoveOptions{}) })
	d := newDocker(t, "unix://"+e.sock, "conn-d")
	in := dockerInput(t, "44444444-93c5-4d6a-b7e0-5f21c8d9a3b4")
	in.Type = deploy.TypeRAC // no ports: nothing on the host's 389 or 9000
	in.Settings.DockerNetwork = "akrt-net"
	t.Cleanup(func() { d.Delete(context.Background(), in.UUID) })
	mustApply(t, d, in)
	name := "ak-outpost-ldap-testdockerportsandnetwork"
	c := inspect(t, e, name)
	if _, ok := c.NetworkSettings.Networks["akrt-net"]; !ok || c.HostConfig.NetworkMode != "akrt-net" {
		t.Fatalf("not on akrt-net: mode %q, networks %v", c.HostConfig.NetworkMode, c.NetworkSettings.Networks)
	}
	if res := mustApply(t, d, in); res.Writes() != 0 {
		t.Fatalf("no-op on a user network changed %+v", res)
	}

	// docker_map_ports publishes the LDAP ports (389 and 636 on the host).
	in.Type = deploy.TypeLDAP
	in.Settings.DockerMapPorts = true
	if res := mustApply(t, d, in); res.Writes() != 1 {
		t.Fatalf("map ports: %+v", res)
	}
	c = inspect(t, e, name)
	var got []string
	for p, b := range c.HostConfig.PortBindings {
		for _, x := range b {
			got = append(got, x.HostPort+":"+p.String())
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"389:3389/tcp", "636:6636/tcp"}) {
		t.Fatalf("port bindings %v", got)
	}
	if res := mustApply(t, d, in); res.Writes() != 0 {
		t.Fatalf("no-op with ports changed %+v", res)
	}
}

func TestDockerErrors(t *testing.T) {
	e := dockerEngine(t)
	ctx := context.Background()
	d := newDocker(t, "unix://"+e.sock, "conn-e")
	in := dockerInput(t, "55555555-93c5-4d6a-b7e0-5f21c8d9a3b4")

	t.Run("image that does not exist", func(t *testing.T) {
		in := in
		in.Settings.ContainerImage = "registry.invalid/nothing:here"
		_, err := d.Apply(ctx, in)
		if err == nil || !strings.Contains(err.Error(), "registry.invalid/nothing:here") || strings.Contains(err.Error(), in.Token) {
			t.Fatalf("error %v", err)
		}
		if got, _ := d.Outposts(ctx); len(got) != 0 {
			t.Fatalf("containers created: %v", got)
		}
	})
	t.Run("name template that renders an invalid name", func(t *testing.T) {
		in := in
		in.Settings.ObjectNamingTemplate = "bad name %(name)s"
		if _, err := d.Apply(ctx, in); err == nil || !strings.Contains(err.Error(), "not a valid Docker container name") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("unreachable socket", func(t *testing.T) {
		bad := newDocker(t, "unix://"+e.dir+"/nothing.sock", "conn-e")
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := bad.Apply(c, in); err == nil || strings.Contains(err.Error(), in.Token) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("bad TLS material", func(t *testing.T) {
		_, err := NewDocker(DockerConfig{Host: "tcp://127.0.0.1:2376", Connection: "x", ClientCert: []byte("nope"), ClientKey: []byte("PRIVATE KEY")})
		if err == nil || strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Fatalf("error %v", err)
		}
		_, err = NewDocker(DockerConfig{Host: "tcp://127.0.0.1:2376", Connection: "x", CACert: []byte("garbage")})
		if err == nil {
			t.Fatal("a CA without certificates was accepted")
		}
	})
}
