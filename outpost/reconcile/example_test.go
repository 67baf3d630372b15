package reconcile_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
	"github.com/akoutpost/akoutpost/outpost/reconcile"
)

// A host runs the controller with its own logger and registry, and reads
// the status with a Go call. Here the core has an outpost that names no
// integration, so there is nothing to deploy.
func ExampleController() {
	core, err := outposttest.NewServer([]byte(`version: 1
entries:
  - model: authentik_core.group
    id: admins
    identifiers: {name: admins}
    attrs: {is_superuser: true}
  - model: authentik_core.user
    id: admin
    identifiers: {username: admin}
    attrs: {groups: [!KeyOf admins]}
  - model: authentik_core.token
    identifiers: {identifier: controller}
    attrs: {user: !KeyOf admin, intent: api}
  - model: authentik_outposts.outpost
    identifiers: {name: by hand}
    attrs: {type: ldap}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer core.Close()
	u, _ := url.Parse(core.URL())
	api, err := outpost.NewClient(outpost.ClientConfig{URL: u, Token: core.APITokens()[0].Key})
	if err != nil {
		fmt.Println(err)
		return
	}
	reg := prometheus.NewRegistry()
	ctl, err := reconcile.NewController(reconcile.ControllerConfig{
		Client:     api,
		Registerer: reg,
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctl.Poll(context.Background()) // Run(ctx) polls until ctx ends
	st := ctl.Status()
	fmt.Printf("poll error %q, %d outposts managed\n", st.PollError, len(st.Outposts))
	// Output: poll error "", 0 outposts managed
}
