package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/akoutpost/akoutpost/outpost"
)

// Outpost types, as the core names them in the outpost's "type" field.
const (
	TypeProxy  = "proxy"
	TypeLDAP   = "ldap"
	TypeRadius = "radius"
	TypeRAC    = "rac"
)

// Proxy provider modes, as the core names them in a proxy provider's "mode".
const (
	ModeProxy         = "proxy"
	ModeForwardSingle = "forward_single"
	ModeForwardDomain = "forward_domain"
)

// DefaultImageBase is authentik's default for its CONFIG setting
// outposts.container_image_base: authentik's image of the outpost type, tagged
// with the server version.
const DefaultImageBase = "ghcr.io/goauthentik/%(type)s:%(version)s"

// managedEmbedded is the "managed" value of authentik's embedded outpost, which
// runs inside the server and has nothing to deploy.
const managedEmbedded = "goauthentik.io/outposts/embedded"

// ErrEmbedded is returned for the embedded outpost: it runs inside the
// authentik server, so authentik's controllers create nothing for it.
var ErrEmbedded = errors.New("deploy: the embedded outpost runs inside the authentik server and has no manifests")

// Input describes the outpost to deploy. Name, UUID, Type and Token are
// required, and so is Version unless Settings.ContainerImage is set.
type Input struct {
	// Name is the outpost's name. Its slug labels the objects and fills the
	// %(name)s placeholder of the naming template.
	Name string
	// UUID is the outpost's primary key, with or without dashes.
	UUID string
	// Type is the outpost type: proxy, ldap, radius or rac.
	Type string
	// Managed is the outpost's "managed" field; the embedded outpost's value
	// makes both renderers return ErrEmbedded.
	Managed string
	// Version is the authentik version: it tags the default image (a
	// "+<build hash>" suffix is left out of the tag) and fills the
	// app.kubernetes.io/version labels ("+" becomes "-"). authentik's
	// controllers use the server's own version, so the image always follows
	// the server.
	Version string
	// ImageBase replaces DefaultImageBase, as authentik's
	// AUTHENTIK_OUTPOSTS__CONTAINER_IMAGE_BASE does. Placeholders: %(type)s,
	// %(version)s and %(build_hash)s (the part of Version after a "+").
	ImageBase string
	// Token is the outpost's API token. It is written into the Kubernetes
	// Secret and the compose environment and never into an error.
	Token string
	// Settings are the outpost's settings (the outpost config object),
	// decoded with outpost.DecodeSettings so that absent keys have
	// authentik's defaults. An empty KubernetesNamespace means "default".
	Settings outpost.Settings
	// ProxyProviders are the proxy outpost's providers; they make the
	// Ingress and HTTPRoute rules, the Traefik Middleware and the Traefik
	// labels of the compose file. Ignored for other types.
	ProxyProviders []ProxyProvider
	// HealthcheckCommand replaces the compose health check's test, for
	// example []string{"CMD", "/my-outpost", "healthcheck"}. By default an
	// image under ghcr.io/goauthentik/ gets authentik's command
	// (/<type> healthcheck) and any other image "akoutpost healthcheck".
	HealthcheckCommand []string
}

// ProxyProvider is what deployment needs to know of one proxy provider.
type ProxyProvider struct {
	// ExternalHost is the provider's external_host URL, such as
	// https://app.example.com.
	ExternalHost string `json:"external_host"`
	// Mode is proxy, forward_single or forward_domain.
	Mode string `json:"mode"`
}

// ProxyProvidersFromJSON decodes the external_host and mode of each item of
// /api/v3/outposts/proxy/ (the Providers of an outpost update).
func ProxyProvidersFromJSON(items []json.RawMessage) ([]ProxyProvider, error) {
	out := make([]ProxyProvider, 0, len(items))
	for i, raw := range items {
		var p ProxyProvider
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("deploy: decoding proxy provider %d: %w", i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// prepared is an Input checked and with its derived values computed once.
type prepared struct {
	in        Input
	s         outpost.Settings
	replicas  int32
	patches   map[string][]patchOp
	refs      []parentRef
	uuidHex   string
	slug      string
	image     string
	version   string // label form: "+" replaced by "-"
	namespace string
}

func (in Input) prepare() (*prepared, error) {
	if in.Managed == managedEmbedded {
		return nil, ErrEmbedded
	}
	if strings.TrimSpace(in.Name) == "" {
		return nil, errors.New("deploy: outpost name is empty")
	}
	id, err := uuid.Parse(in.UUID)
	if err != nil {
		return nil, fmt.Errorf("deploy: outpost UUID %q: %w", in.UUID, err)
	}
	switch in.Type {
	case TypeProxy, TypeLDAP, TypeRadius, TypeRAC:
	default:
		return nil, fmt.Errorf("deploy: unknown outpost type %q (want proxy, ldap, radius or rac)", in.Type)
	}
	if in.Token == "" {
		return nil, errors.New("deploy: outpost token is empty")
	}
	p := &prepared{
		in:      in,
		s:       in.Settings,
		uuidHex: strings.ReplaceAll(id.String(), "-", ""),
		slug:    slugify(in.Name),
		version: strings.ReplaceAll(in.Version, "+", "-"),
	}
	p.image, err = image(in)
	if err != nil {
		return nil, err
	}
	p.namespace = p.s.KubernetesNamespace
	if p.namespace == "" {
		p.namespace = "default"
	}
	if in.Settings.KubernetesReplicas < 0 || in.Settings.KubernetesReplicas > math.MaxInt32 {
		return nil, fmt.Errorf("deploy: kubernetes_replicas %d is out of range", in.Settings.KubernetesReplicas)
	}
	p.replicas = int32(in.Settings.KubernetesReplicas)
	if p.patches, err = patchesFromSettings(in.Settings.KubernetesJSONPatches); err != nil {
		return nil, err
	}
	if p.refs, err = parentRefsFromSettings(in.Settings.KubernetesHTTPRouteParentRefs); err != nil {
		return nil, err
	}
	if in.Type == TypeProxy {
		for i, pp := range in.ProxyProviders {
			u, err := url.Parse(pp.ExternalHost)
			if err != nil || u.Hostname() == "" {
				return nil, fmt.Errorf("deploy: proxy provider %d: external host %q is not an absolute URL", i, pp.ExternalHost)
			}
		}
	}
	return p, nil
}

// disabled reports whether the component is named in
// kubernetes_disabled_components.
func (p *prepared) disabled(component string) bool {
	return slices.Contains(p.s.KubernetesDisabledComponents, component)
}

// image is the container image: container_image, else the image base
// formatted with the outpost type and version.
func image(in Input) (string, error) {
	if in.Settings.ContainerImage != "" {
		return in.Settings.ContainerImage, nil
	}
	if in.Version == "" {
		return "", errors.New("deploy: version is empty and container_image is not set, so there is no image")
	}
	base := in.ImageBase
	if base == "" {
		base = DefaultImageBase
	}
	// authentik's %(version)s never carries the build hash ("+<hash>" is
	// not allowed in an image tag); the hash is %(build_hash)s.
	version, hash, _ := strings.Cut(in.Version, "+")
	img, err := pyFormat(base, map[string]string{"type": in.Type, "version": version, "build_hash": hash})
	if err != nil {
		return "", fmt.Errorf("deploy: image base: %w", err)
	}
	return img, nil
}

// NewInput builds an Input from what an outpost learns from the core: its
// Info, its decoded settings and the items of /api/v3/outposts/<type>/ (for
// a proxy outpost, each item's external_host and mode are read). Version is
// the authentik version the default image follows, not this library's.
// The command `akoutpost manifests` uses it.
func NewInput(info outpost.Info, settings outpost.Settings, providers []json.RawMessage, token, version string) (Input, error) {
	in := Input{
		Name:     info.Name,
		UUID:     info.PK,
		Type:     info.Type,
		Managed:  info.Managed,
		Version:  version,
		Token:    token,
		Settings: settings,
	}
	if info.Type == TypeProxy {
		pp, err := ProxyProvidersFromJSON(providers)
		if err != nil {
			return Input{}, err
		}
		in.ProxyProviders = pp
	}
	return in, nil
}
