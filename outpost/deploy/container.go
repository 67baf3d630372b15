package deploy

import (
	"fmt"
	"strings"
	"time"
)

// Container is the Docker container authentik's Docker controller creates
// for an outpost, as plain values: Compose writes it as a compose service and
// a reconciler hands it to the Docker Engine API.
type Container struct {
	// Name is the container name from object_naming_template.
	Name string
	// Image is the image reference (see Image).
	Image string
	// Env holds AUTHENTIK_HOST (lower-cased), AUTHENTIK_INSECURE
	// ("true"/"false"), AUTHENTIK_TOKEN and AUTHENTIK_HOST_BROWSER.
	Env map[string]string
	// Labels are io.goauthentik.outpost-uuid, docker_labels and, for
	// proxy outposts with providers, the Traefik labels.
	Labels map[string]string
	// NetworkMode is docker_network when it names a mode (host, none,
	// bridge, container:NAME); Network is docker_network when it names a
	// network to attach to. Both are empty for the engine's default.
	NetworkMode string
	Network     string
	// Ports are published only when docker_map_ports is set and the
	// container has a network stack of its own; never the metrics port.
	Ports []PublishedPort
	// RestartPolicy is always unless-stopped.
	RestartPolicy string
	// Healthcheck is the image's health-check command and its timing.
	Healthcheck Healthcheck
}

// PublishedPort publishes the container's port Container on the host's port
// Host, for Protocol tcp or udp.
type PublishedPort struct {
	Host      int32
	Container int32
	Protocol  string
}

// Healthcheck is a container health check: Test in Docker's form (["CMD",
// argv...]), run every Interval, unhealthy after Retries failures, failures
// ignored for StartPeriod after a start.
type Healthcheck struct {
	Test        []string
	Interval    time.Duration
	Retries     int
	StartPeriod time.Duration
}

// DockerContainer returns the container authentik's Docker controller would
// create for the outpost (see Compose for the values).
func DockerContainer(in Input) (Container, error) {
	p, err := in.prepare()
	if err != nil {
		return Container{}, err
	}
	name, err := p.containerName()
	if err != nil {
		return Container{}, err
	}
	c := Container{
		Name:  name,
		Image: p.image,
		Env: map[string]string{
			"AUTHENTIK_HOST":         strings.ToLower(p.s.AuthentikHost),
			"AUTHENTIK_INSECURE":     fmt.Sprint(p.s.AuthentikHostInsecure),
			"AUTHENTIK_TOKEN":        p.in.Token,
			"AUTHENTIK_HOST_BROWSER": p.s.AuthentikHostBrowser,
		},
		Labels:        p.labels(name),
		RestartPolicy: "unless-stopped",
		Healthcheck: Healthcheck{
			Test:        p.healthcheckCommand(),
			Interval:    5 * time.Second,
			Retries:     20,
			StartPeriod: 3 * time.Second,
		},
	}
	switch network := p.s.DockerNetwork; {
	case network == "":
	case network == "host", network == "none", network == "bridge", strings.HasPrefix(network, "container:"):
		c.NetworkMode = network
	default:
		c.Network = network
	}
	// Published ports mean nothing to a container without a network stack of
	// its own (host, none, container:NAME).
	if p.s.DockerMapPorts && (c.NetworkMode == "" || c.NetworkMode == "bridge") {
		for _, pt := range dockerPorts(p.in.Type) {
			c.Ports = append(c.Ports, PublishedPort{Host: pt.port, Container: pt.target(), Protocol: pt.protocol})
		}
	}
	return c, nil
}
