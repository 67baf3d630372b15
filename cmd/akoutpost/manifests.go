package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/deploy"
)

// manifests prints what authentik's Kubernetes or Docker controller would
// create for the outpost AUTHENTIK_HOST and AUTHENTIK_TOKEN name.
func (c command) manifests(ctx context.Context, args []string) error {
	if len(args) != 1 || (args[0] != "kubernetes" && args[0] != "compose") {
		return fmt.Errorf("%w: manifests takes kubernetes or compose", errUsage)
	}
	env, err := readEnvironment(c.getenv, true)
	if err != nil {
		return err
	}
	in, err := fetchDeployInput(ctx, env)
	if err != nil {
		return err
	}
	var out []byte
	if args[0] == "kubernetes" {
		out, err = deploy.Kubernetes(in)
	} else {
		out, err = deploy.Compose(in)
	}
	if err != nil {
		return err
	}
	_, err = c.stdout.Write(out)
	return err
}

// fetchDeployInput reads the token's outpost and its providers once, without
// the retries of a running outpost: a script wants an answer or an error.
func fetchDeployInput(ctx context.Context, env environment) (deploy.Input, error) {
	u, err := url.Parse(env.Host)
	if err != nil {
		return deploy.Input{}, fmt.Errorf("AUTHENTIK_HOST: %w", err)
	}
	api, err := outpost.NewClient(outpost.ClientConfig{
		URL: u, Token: env.Token, Insecure: env.Insecure, Version: version, RetryMax: -1,
	})
	if err != nil {
		return deploy.Input{}, err
	}
	var list struct {
		Results []struct {
			PK      string         `json:"pk"`
			Name    string         `json:"name"`
			Type    string         `json:"type"`
			Managed string         `json:"managed"`
			Config  map[string]any `json:"config"`
		} `json:"results"`
	}
	if err := api.Get(ctx, "/outposts/instances/", nil, &list); err != nil {
		return deploy.Input{}, fmt.Errorf("fetching the outpost: %w", err)
	}
	if len(list.Results) == 0 {
		return deploy.Input{}, outpost.ErrNoOutpost
	}
	o := list.Results[0]
	settings, err := outpost.DecodeSettings(o.Config)
	if err != nil {
		return deploy.Input{}, err
	}
	var providers []json.RawMessage
	err = api.List(ctx, "/outposts/"+url.PathEscape(o.Type)+"/", nil, func(m json.RawMessage) error {
		providers = append(providers, m)
		return nil
	})
	if err != nil {
		return deploy.Input{}, fmt.Errorf("fetching the %s providers: %w", o.Type, err)
	}
	info := outpost.Info{PK: o.PK, Name: o.Name, Type: o.Type, Managed: o.Managed}
	return deploy.NewInput(info, settings, providers, env.Token, version)
}
