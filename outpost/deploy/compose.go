package deploy

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Compose renders a docker-compose file with one service, named like the
// container, holding what authentik's Docker controller gives the outpost's
// container: the image, the container name from object_naming_template, the
// environment (AUTHENTIK_HOST lower-cased, AUTHENTIK_INSECURE as
// true/false, AUTHENTIK_TOKEN, AUTHENTIK_HOST_BROWSER), the label
// io.goauthentik.outpost-uuid plus docker_labels (and, for proxy outposts,
// Traefik labels routing the providers' hosts' /outpost.goauthentik.io paths
// to it), restart unless-stopped, the network docker_network, the type's
// ports when docker_map_ports is set (never the metrics port), and a health
// check every 5 s with 20 retries after a 3 s start period.
//
// Every "$" in a value is doubled, so compose does not interpolate it.
func Compose(in Input) ([]byte, error) {
	c, err := DockerContainer(in)
	if err != nil {
		return nil, err
	}
	svc := composeService{
		ContainerName: c.Name,
		Image:         esc(c.Image),
		Restart:       c.RestartPolicy,
		Environment:   map[string]string{},
		Labels:        map[string]string{},
		NetworkMode:   esc(c.NetworkMode),
		Healthcheck: composeHealthcheck{
			Interval:    c.Healthcheck.Interval.String(),
			Retries:     c.Healthcheck.Retries,
			StartPeriod: c.Healthcheck.StartPeriod.String(),
		},
	}
	for k, v := range c.Env {
		svc.Environment[k] = esc(v)
	}
	for k, v := range c.Labels {
		svc.Labels[esc(k)] = esc(v)
	}
	for _, s := range c.Healthcheck.Test {
		svc.Healthcheck.Test = append(svc.Healthcheck.Test, esc(s))
	}
	f := composeFile{}
	if c.Network != "" {
		svc.Networks = []string{esc(c.Network)}
		f.Networks = map[string]composeNetwork{esc(c.Network): {External: true, Name: esc(c.Network)}}
	}
	for _, pt := range c.Ports {
		svc.Ports = append(svc.Ports, fmt.Sprintf("%d:%d/%s", pt.Host, pt.Container, pt.Protocol))
	}
	f.Services = map[string]composeService{c.Name: svc}

	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("deploy: writing compose YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("deploy: writing compose YAML: %w", err)
	}
	return out.Bytes(), nil
}

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Networks map[string]composeNetwork `yaml:"networks,omitempty"`
}

type composeService struct {
	ContainerName string             `yaml:"container_name"`
	Image         string             `yaml:"image"`
	Restart       string             `yaml:"restart"`
	Environment   map[string]string  `yaml:"environment"`
	Labels        map[string]string  `yaml:"labels"`
	NetworkMode   string             `yaml:"network_mode,omitempty"`
	Networks      []string           `yaml:"networks,omitempty"`
	Ports         []string           `yaml:"ports,omitempty"`
	Healthcheck   composeHealthcheck `yaml:"healthcheck"`
}

type composeHealthcheck struct {
	Test        []string `yaml:"test,flow"`
	Interval    string   `yaml:"interval"`
	Retries     int      `yaml:"retries"`
	StartPeriod string   `yaml:"start_period"`
}

type composeNetwork struct {
	External bool   `yaml:"external"`
	Name     string `yaml:"name"`
}

// esc doubles "$" so compose's variable interpolation leaves values alone.
func esc(s string) string { return strings.ReplaceAll(s, "$", "$$") }

// dockerPorts are the ports authentik's Docker controller publishes for each
// type: host port, and container port when it differs. LDAP is published on
// the standard 389 and 636.
func dockerPorts(typ string) []port {
	switch typ {
	case TypeProxy:
		return []port{{9000, "http", "tcp", 0}, {9443, "https", "tcp", 0}}
	case TypeLDAP:
		return []port{{389, "ldap", "tcp", 3389}, {636, "ldaps", "tcp", 6636}}
	case TypeRadius:
		return []port{{1812, "radius", "udp", 0}}
	}
	return nil
}

// labels are the container's labels: authentik's outpost label, then
// docker_labels, then for proxy outposts the Traefik labels, which win over
// docker_labels as in authentik.
func (p *prepared) labels(name string) map[string]string {
	l := map[string]string{"io.goauthentik.outpost-uuid": p.uuidHex}
	for k, v := range p.s.DockerLabels {
		l[k] = v
	}
	if p.in.Type != TypeProxy || len(p.in.ProxyProviders) == 0 {
		// Without hosts there is no rule; a router without one would
		// catch every host, so no Traefik labels at all.
		return l
	}
	var hosts []string
	for _, pp := range p.in.ProxyProviders {
		u, _ := url.Parse(pp.ExternalHost) // checked by prepare
		hosts = append(hosts, "Host(`"+u.Host+"`)")
	}
	router := "traefik.http.routers." + name + "-router"
	service := "traefik.http.services." + name + "-service.loadbalancer"
	l["traefik.enable"] = "true"
	l[router+".rule"] = "(" + strings.Join(hosts, " || ") + ") && PathPrefix(`/outpost.goauthentik.io`)"
	l[router+".tls"] = "true"
	l[router+".service"] = name + "-service"
	l[service+".healthcheck.path"] = HealthPath
	l[service+".healthcheck.port"] = "9300"
	l[service+".server.port"] = "9000"
	return l
}

// healthcheckCommand is Input.HealthcheckCommand, else the command of the
// image: authentik's images have /<type> healthcheck, this project's image
// (any other image) has akoutpost healthcheck.
func (p *prepared) healthcheckCommand() []string {
	if len(p.in.HealthcheckCommand) > 0 {
		return append([]string(nil), p.in.HealthcheckCommand...)
	}
	if strings.HasPrefix(p.image, "ghcr.io/goauthentik/") {
		return []string{"CMD", "/" + p.in.Type, "healthcheck"}
	}
	return []string{"CMD", "akoutpost", "healthcheck"}
}
