package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/deploy"
)

// What the controller reads from the core, with the paths and field names
// of authentik's API (schema.yml). Wire types stay in this file.

// Connection kinds.
const (
	KindDocker     = "docker"
	KindKubernetes = "kubernetes"
)

type outpostWire struct {
	PK                string         `json:"pk"`
	Name              string         `json:"name"`
	Type              string         `json:"type"`
	Providers         []int          `json:"providers"`
	ServiceConnection *string        `json:"service_connection"`
	TokenIdentifier   string         `json:"token_identifier"`
	Config            map[string]any `json:"config"`
	Managed           *string        `json:"managed"`
}

type dockerConnWire struct {
	PK                string  `json:"pk"`
	Name              string  `json:"name"`
	Local             bool    `json:"local"`
	URL               string  `json:"url"`
	TLSVerification   *string `json:"tls_verification"`
	TLSAuthentication *string `json:"tls_authentication"`
}

type kubeConnWire struct {
	PK         string         `json:"pk"`
	Name       string         `json:"name"`
	Local      bool           `json:"local"`
	Kubeconfig map[string]any `json:"kubeconfig"`
	VerifySSL  *bool          `json:"verify_ssl"`
}

// connection is a service connection as the controller uses it.
type connection struct {
	pk, name, kind string
	docker         DockerConfig
	kube           KubernetesConfig
	// digest changes when anything of the connection changes, so its
	// reconciler is rebuilt.
	digest string
}

// snapshot is what the core holds at one poll.
type snapshot struct {
	outposts    []outpostWire
	connections map[string]*connection
}

func (c *Controller) fetch(ctx context.Context) (*snapshot, error) {
	api := c.cfg.Client
	snap := &snapshot{connections: map[string]*connection{}}
	err := api.List(ctx, "/outposts/instances/", nil, func(raw json.RawMessage) error {
		var o outpostWire
		if err := json.Unmarshal(raw, &o); err != nil {
			return fmt.Errorf("decoding an outpost: %w", err)
		}
		snap.outposts = append(snap.outposts, o)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing outposts: %w", err)
	}
	err = api.List(ctx, "/outposts/service_connections/docker/", nil, func(raw json.RawMessage) error {
		var w dockerConnWire
		if err := json.Unmarshal(raw, &w); err != nil {
			return fmt.Errorf("decoding a Docker service connection: %w", err)
		}
		conn, err := c.dockerConnection(ctx, w)
		if err != nil {
			return err
		}
		snap.connections[w.PK] = conn
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing Docker service connections: %w", err)
	}
	err = api.List(ctx, "/outposts/service_connections/kubernetes/", nil, func(raw json.RawMessage) error {
		var w kubeConnWire
		if err := json.Unmarshal(raw, &w); err != nil {
			return fmt.Errorf("decoding a Kubernetes service connection: %w", err)
		}
		conn := &connection{pk: w.PK, name: w.Name, kind: KindKubernetes, kube: KubernetesConfig{
			Connection: w.PK, InsecureSkipTLSVerify: w.VerifySSL != nil && !*w.VerifySSL,
		}}
		if !w.Local && len(w.Kubeconfig) > 0 {
			kc, err := json.Marshal(w.Kubeconfig) // JSON is YAML
			if err != nil {
				return fmt.Errorf("Kubernetes service connection %s: kubeconfig: %w", w.Name, err)
			}
			conn.kube.Kubeconfig = kc
		}
		conn.digest = digestOf(conn.kube.Kubeconfig, conn.kube.InsecureSkipTLSVerify, w.Local)
		snap.connections[w.PK] = conn
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing Kubernetes service connections: %w", err)
	}
	return snap, nil
}

func (c *Controller) dockerConnection(ctx context.Context, w dockerConnWire) (*connection, error) {
	conn := &connection{pk: w.PK, name: w.Name, kind: KindDocker, docker: DockerConfig{Connection: w.PK}}
	if w.Local {
		conn.docker.Host = c.cfg.LocalDockerHost
	} else {
		conn.docker.Host = w.URL
	}
	if w.TLSVerification != nil && *w.TLSVerification != "" {
		pem, err := c.keypairPart(ctx, *w.TLSVerification, "view_certificate")
		if err != nil {
			return nil, fmt.Errorf("Docker service connection %s: TLS verification certificate: %w", w.Name, err)
		}
		conn.docker.CACert = pem
	}
	if w.TLSAuthentication != nil && *w.TLSAuthentication != "" {
		cert, err := c.keypairPart(ctx, *w.TLSAuthentication, "view_certificate")
		if err != nil {
			return nil, fmt.Errorf("Docker service connection %s: TLS authentication certificate: %w", w.Name, err)
		}
		key, err := c.keypairPart(ctx, *w.TLSAuthentication, "view_private_key")
		if err != nil {
			return nil, fmt.Errorf("Docker service connection %s: TLS authentication key: %w", w.Name, err)
		}
		conn.docker.ClientCert, conn.docker.ClientKey = cert, key
	}
	conn.digest = digestOf(conn.docker.Host, conn.docker.CACert, conn.docker.ClientCert, conn.docker.ClientKey)
	return conn, nil
}

// keypairPart reads a certificate key pair's certificate or key PEM.
func (c *Controller) keypairPart(ctx context.Context, id, view string) ([]byte, error) {
	var out struct {
		Data string `json:"data"`
	}
	if err := c.cfg.Client.Get(ctx, "/crypto/certificatekeypairs/"+url.PathEscape(id)+"/"+view+"/", nil, &out); err != nil {
		return nil, err
	}
	return []byte(out.Data), nil
}

// outpostToken reads the outpost's token key, as an API client allowed to
// view it can.
func (c *Controller) outpostToken(ctx context.Context, identifier string) (string, error) {
	var out struct {
		Key string `json:"key"`
	}
	if err := c.cfg.Client.Get(ctx, "/core/tokens/"+url.PathEscape(identifier)+"/view_key/", nil, &out); err != nil {
		return "", fmt.Errorf("reading the outpost's token %s: %w", identifier, err)
	}
	if out.Key == "" {
		return "", fmt.Errorf("the core returned an empty key for token %s", identifier)
	}
	return out.Key, nil
}

// input builds what the renderer needs for one outpost, with its token.
func (c *Controller) input(ctx context.Context, o outpostWire, providers []deploy.ProxyProvider) (deploy.Input, error) {
	settings, err := outpost.DecodeSettings(o.Config)
	if err != nil {
		return deploy.Input{}, err
	}
	token, err := c.outpostToken(ctx, o.TokenIdentifier)
	if err != nil {
		return deploy.Input{}, err
	}
	in := deploy.Input{
		Name: o.Name, UUID: o.PK, Type: o.Type, Version: c.cfg.Version, ImageBase: c.cfg.ImageBase,
		Token: token, Settings: settings, HealthcheckCommand: c.cfg.HealthcheckCommand,
		ProxyProviders: providers,
	}
	if o.Managed != nil {
		in.Managed = *o.Managed
	}
	return in, nil
}

// proxyProviders reads the external host and mode of a proxy outpost's
// providers from /providers/proxy/{pk}/. They are read at every poll (a
// provider's change does not show in the outpost), the token only when
// the outpost is reconciled: authentik records every view of a key.
func (c *Controller) proxyProviders(ctx context.Context, o outpostWire) ([]deploy.ProxyProvider, error) {
	if o.Type != deploy.TypeProxy {
		return nil, nil
	}
	var out []deploy.ProxyProvider
	for _, pk := range o.Providers {
		var p deploy.ProxyProvider
		if err := c.cfg.Client.Get(ctx, "/providers/proxy/"+strconv.Itoa(pk)+"/", nil, &p); err != nil {
			var apiErr *outpost.APIError
			if errors.As(err, &apiErr) && apiErr.StatusCode == 404 {
				continue // gone meanwhile
			}
			return nil, fmt.Errorf("reading proxy provider %d: %w", pk, err)
		}
		out = append(out, p)
	}
	return out, nil
}
