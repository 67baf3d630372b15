package reconcile

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/akoutpost/akoutpost/outpost/deploy"
)

// Labels that mark what a reconciler created. A container or object without
// LabelManagedBy set to ManagedBy, or with another LabelConnection, is never
// changed or removed.
const (
	LabelManagedBy  = "akoutpost.dev/managed-by"
	ManagedBy       = "akoutpost"
	LabelConnection = "akoutpost.dev/connection"
	// LabelSpec holds a digest of the container the settings describe, so a
	// change of settings is seen even where the engine cannot show it.
	LabelSpec = "akoutpost.dev/spec"
	// labelOutpost is authentik's own label on outpost containers.
	labelOutpost = "io.goauthentik.outpost-uuid"
)

// DockerConfig says how to reach a Docker engine, as authentik's Docker
// service connection does.
type DockerConfig struct {
	// Host is the engine's URL: unix:///path, tcp://host:port (TLS when
	// CACert or ClientCert is set) or https://host:port. Empty means the
	// local socket unix:///var/run/docker.sock (authentik's "local").
	Host string
	// CACert is the PEM of the certificates that verify the engine (the
	// connection's tls_verification keypair). Empty with TLS means the
	// system roots.
	CACert []byte
	// ClientCert and ClientKey are the PEM of the client certificate the
	// engine authenticates (the connection's tls_authentication keypair).
	ClientCert, ClientKey []byte
	// Connection names the integration (the service connection's primary
	// key). It is written to LabelConnection on every container, and only
	// containers carrying the same value are changed or removed.
	Connection string
	// Logger receives one line per change; nil discards.
	Logger *slog.Logger
}

// Docker keeps outposts' containers matching their settings on one Docker
// engine. Its methods are safe for concurrent use on different outposts.
type Docker struct {
	cli        *client.Client
	connection string
	log        *slog.Logger
}

// NewDocker checks cfg and builds a client; it does no I/O. The client
// negotiates the API version with the engine (1.40 and newer).
func NewDocker(cfg DockerConfig) (*Docker, error) {
	if cfg.Connection == "" {
		return nil, errors.New("reconcile: docker: Connection is empty")
	}
	host := cfg.Host
	if host == "" {
		host = client.DefaultDockerHost
	}
	opts := []client.Opt{}
	tlsOn := len(cfg.CACert) > 0 || len(cfg.ClientCert) > 0 || strings.HasPrefix(host, "https://")
	if tlsOn {
		tc, err := tlsConfig(cfg)
		if err != nil {
			return nil, err
		}
		host = strings.Replace(host, "https://", "tcp://", 1)
		opts = append(opts, client.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: tc}}))
	}
	opts = append(opts, client.WithHost(host), client.WithAPIVersionNegotiation())
	cli, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("reconcile: docker host %q: %w", redactURL(host), err)
	}
	return &Docker{cli: cli, connection: cfg.Connection, log: orDiscard(cfg.Logger)}, nil
}

func tlsConfig(cfg DockerConfig) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(cfg.CACert) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(cfg.CACert) {
			return nil, errors.New("reconcile: docker: the TLS verification certificate holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	if len(cfg.ClientCert) > 0 || len(cfg.ClientKey) > 0 {
		pair, err := tls.X509KeyPair(cfg.ClientCert, cfg.ClientKey)
		if err != nil {
			// The error of X509KeyPair never quotes key material.
			return nil, fmt.Errorf("reconcile: docker: the TLS authentication keypair: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// Close releases the client's connections.
func (d *Docker) Close() error { return d.cli.Close() }

// Version asks the engine for its version, which is how authentik checks a
// Docker service connection.
func (d *Docker) Version(ctx context.Context) (string, error) {
	v, err := d.cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", fmt.Errorf("reconcile: docker: %w", err)
	}
	return v.Version, nil
}

// Apply makes the outpost's container match in: it pulls the image when the
// engine lacks it, creates and starts the container when there is none,
// starts it when it was stopped, and removes and re-creates it when its
// image, environment, labels, published ports, network, restart policy or
// health check differ from the settings, or the settings changed since it
// was created. Containers of the same outpost under another name (the naming
// template changed) are removed. A container of the same name that this
// reconciler did not create is left alone and reported as an error. When
// everything matches, Apply makes no write.
func (d *Docker) Apply(ctx context.Context, in deploy.Input) (Result, error) {
	var res Result
	want, err := deploy.DockerContainer(in)
	if err != nil {
		return res, err
	}
	uuidHex := want.Labels[labelOutpost]
	spec := d.specDigest(want)

	// Containers of this outpost under an old name go first, so a renamed
	// outpost does not run twice.
	owned, err := d.list(ctx, uuidHex)
	if err != nil {
		return res, err
	}
	for _, c := range owned {
		if containerName(c.Names) == want.Name {
			continue
		}
		if err := d.remove(ctx, c.ID); err != nil {
			return res, err
		}
		res.Removed = append(res.Removed, "container/"+containerName(c.Names))
	}

	cur, err := d.cli.ContainerInspect(ctx, want.Name, client.ContainerInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
		if err := d.create(ctx, want, spec); err != nil {
			return res, err
		}
		res.Created = append(res.Created, "container/"+want.Name)
		d.log.Info("created container", "container", want.Name, "image", want.Image)
		return res, nil
	case err != nil:
		return res, fmt.Errorf("reconcile: docker: inspecting container %s: %w", want.Name, err)
	}
	c := cur.Container
	if c.Config == nil || c.Config.Labels[LabelManagedBy] != ManagedBy || c.Config.Labels[LabelConnection] != d.connection {
		return res, fmt.Errorf("reconcile: docker: a container named %s exists that this integration did not create; rename or remove it", want.Name)
	}
	if why := drift(c, want, spec); why != "" {
		if err := d.remove(ctx, c.ID); err != nil {
			return res, err
		}
		if err := d.create(ctx, want, spec); err != nil {
			return res, err
		}
		res.Updated = append(res.Updated, "container/"+want.Name)
		d.log.Info("re-created container", "container", want.Name, "reason", why)
		return res, nil
	}
	if c.State == nil || !c.State.Running {
		if _, err := d.cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
			return res, fmt.Errorf("reconcile: docker: starting container %s: %w", want.Name, err)
		}
		res.Updated = append(res.Updated, "container/"+want.Name)
		d.log.Info("started stopped container", "container", want.Name)
	}
	return res, nil
}

// Delete removes every container this integration created for the outpost
// with the given UUID (with or without dashes).
func (d *Docker) Delete(ctx context.Context, outpostUUID string) (Result, error) {
	var res Result
	owned, err := d.list(ctx, strings.ReplaceAll(outpostUUID, "-", ""))
	if err != nil {
		return res, err
	}
	for _, c := range owned {
		if err := d.remove(ctx, c.ID); err != nil {
			return res, err
		}
		res.Removed = append(res.Removed, "container/"+containerName(c.Names))
		d.log.Info("removed container", "container", containerName(c.Names))
	}
	return res, nil
}

// Outposts returns the UUIDs (hex, without dashes) of the outposts that have
// containers of this integration, so a caller can delete those of outposts
// that are gone or moved to another integration.
func (d *Docker) Outposts(ctx context.Context) ([]string, error) {
	owned, err := d.list(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range owned {
		if u := c.Labels[labelOutpost]; u != "" && !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return out, nil
}

// list returns the containers of this integration, of one outpost when
// uuidHex is set.
func (d *Docker) list(ctx context.Context, uuidHex string) ([]container.Summary, error) {
	f := client.Filters{}.
		Add("label", LabelManagedBy+"="+ManagedBy).
		Add("label", LabelConnection+"="+d.connection)
	if uuidHex != "" {
		f = f.Add("label", labelOutpost+"="+uuidHex)
	}
	r, err := d.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("reconcile: docker: listing containers: %w", err)
	}
	return r.Items, nil
}

func (d *Docker) remove(ctx context.Context, id string) error {
	if _, err := d.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("reconcile: docker: removing container %s: %w", shortID(id), err)
	}
	return nil
}

func (d *Docker) create(ctx context.Context, want deploy.Container, spec string) error {
	if err := d.ensureImage(ctx, want.Image); err != nil {
		return err
	}
	cfg, host, netCfg, err := d.containerConfig(want, spec)
	if err != nil {
		return err
	}
	r, err := d.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: want.Name, Config: cfg, HostConfig: host, NetworkingConfig: netCfg,
	})
	if err != nil {
		return fmt.Errorf("reconcile: docker: creating container %s: %w", want.Name, err)
	}
	if _, err := d.cli.ContainerStart(ctx, r.ID, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("reconcile: docker: starting container %s: %w", want.Name, err)
	}
	return nil
}

// ensureImage pulls the image when the engine does not have it.
func (d *Docker) ensureImage(ctx context.Context, ref string) error {
	_, err := d.cli.ImageInspect(ctx, ref)
	if err == nil {
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("reconcile: docker: inspecting image %s: %w", ref, err)
	}
	d.log.Info("pulling image", "image", ref)
	pull, err := d.cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err == nil {
		err = pull.Wait(ctx)
	}
	if err != nil {
		return fmt.Errorf("reconcile: docker: image %s is not on the engine and pulling it failed: %w", ref, err)
	}
	return nil
}

func (d *Docker) containerConfig(want deploy.Container, spec string) (*container.Config, *container.HostConfig, *network.NetworkingConfig, error) {
	labels := maps.Clone(want.Labels)
	labels[LabelManagedBy] = ManagedBy
	labels[LabelConnection] = d.connection
	labels[LabelSpec] = spec
	cfg := &container.Config{
		Image:  want.Image,
		Env:    envList(want.Env),
		Labels: labels,
		Healthcheck: &container.HealthConfig{
			Test:        want.Healthcheck.Test,
			Interval:    want.Healthcheck.Interval,
			Retries:     want.Healthcheck.Retries,
			StartPeriod: want.Healthcheck.StartPeriod,
		},
	}
	host := &container.HostConfig{
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(want.RestartPolicy)},
		NetworkMode:   container.NetworkMode(want.NetworkMode),
	}
	ports, err := portMap(want.Ports)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(ports) > 0 {
		host.PortBindings = ports
		cfg.ExposedPorts = network.PortSet{}
		for p := range ports {
			cfg.ExposedPorts[p] = struct{}{}
		}
	}
	var netCfg *network.NetworkingConfig
	if want.Network != "" {
		host.NetworkMode = container.NetworkMode(want.Network)
		netCfg = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{want.Network: {}}}
	}
	return cfg, host, netCfg, nil
}

func portMap(ports []deploy.PublishedPort) (network.PortMap, error) {
	m := network.PortMap{}
	for _, p := range ports {
		k, err := network.ParsePort(strconv.Itoa(int(p.Container)) + "/" + p.Protocol)
		if err != nil {
			return nil, fmt.Errorf("reconcile: docker: port %d/%s: %w", p.Container, p.Protocol, err)
		}
		m[k] = append(m[k], network.PortBinding{HostPort: strconv.Itoa(int(p.Host))})
	}
	return m, nil
}

// drift says why the container no longer matches the settings, or "" when
// it does.
func drift(c container.InspectResponse, want deploy.Container, spec string) string {
	if c.Config.Labels[LabelSpec] != spec {
		return "the outpost's settings changed"
	}
	if c.Config.Image != want.Image {
		return "image is " + c.Config.Image
	}
	env := map[string]string{}
	for _, kv := range c.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for k, v := range want.Env {
		if got, ok := env[k]; !ok || got != v {
			return "environment variable " + k + " differs"
		}
	}
	for k, v := range want.Labels {
		if got, ok := c.Config.Labels[k]; !ok || got != v {
			return "label " + k + " differs"
		}
	}
	hc := c.HostConfig
	if hc == nil {
		return "no host configuration"
	}
	if string(hc.RestartPolicy.Name) != want.RestartPolicy {
		return "restart policy is " + string(hc.RestartPolicy.Name)
	}
	wantMode := want.NetworkMode
	if want.Network != "" {
		wantMode = want.Network
	}
	if gotMode := string(hc.NetworkMode); gotMode != wantMode && !(wantMode == "" && (gotMode == "default" || gotMode == "bridge")) {
		return "network is " + gotMode
	}
	wantPorts, err := portMap(want.Ports)
	if err != nil {
		return err.Error()
	}
	if !samePorts(hc.PortBindings, wantPorts) {
		return "published ports differ"
	}
	h := c.Config.Healthcheck
	if h == nil || !slices.Equal(h.Test, want.Healthcheck.Test) || h.Interval != want.Healthcheck.Interval ||
		h.Retries != want.Healthcheck.Retries || h.StartPeriod != want.Healthcheck.StartPeriod {
		return "health check differs"
	}
	return ""
}

func samePorts(got, want network.PortMap) bool {
	if len(got) != len(want) {
		return false
	}
	for k, w := range want {
		g := got[k]
		if len(g) != len(w) {
			return false
		}
		for i := range w {
			if g[i].HostPort != w[i].HostPort {
				return false
			}
		}
	}
	return true
}

// specDigest is a digest of everything the container is made from, so any
// change of settings re-creates it. The token is part of it but cannot be
// recovered from it.
func (d *Docker) specDigest(want deploy.Container) string {
	raw, _ := json.Marshal(struct {
		C          deploy.Container
		Connection string
	}{want, d.connection}) // plain data: Marshal cannot fail
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16])
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

func containerName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return strings.TrimPrefix(names[0], "/")
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
