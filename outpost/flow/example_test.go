package flow_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/akoutpost/akoutpost/outpost/flow"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// Running the default authentication flow for a user of the test core's
// demo, then asking the core who the session belongs to.
func Example() {
	core, err := outposttest.NewServer(outposttest.DemoBlueprint)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer core.Close()
	base, _ := url.Parse(core.URL())
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	exec, err := flow.New(flow.Config{BaseURL: base, Transport: tr, Token: core.Token("demo-ldap"), UserAgent: "example"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, password := range []string{"wrong", "alice-password"} {
		res, err := exec.Run(context.Background(), flow.Request{
			Flow: "default-authentication-flow", Username: "alice", Password: password,
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(res.Outcome)
		if res.Outcome == flow.OutcomeSuccess {
			var me struct {
				User struct {
					Username string `json:"username"`
				} `json:"user"`
			}
			if err := res.Session.Get(context.Background(), "/core/users/me/", nil, &me); err != nil {
				fmt.Println(err)
				return
			}
			fmt.Println(me.User.Username)
		}
	}
	// Output:
	// rejected
	// success
	// alice
}
