package outposttest_test

import (
	"fmt"
	"net/http"

	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// The demo blueprint's outposts, with the tokens an outpost under test is
// configured with.
func ExampleServer_Outposts() {
	core, err := outposttest.NewServer(outposttest.DemoBlueprint)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer core.Close()
	for _, o := range core.Outposts() {
		fmt.Println(o.Name, o.Type, o.Token == core.Token(o.Name))
	}
	// Output:
	// demo-proxy proxy true
	// demo-ldap ldap true
	// demo-radius radius true
}

// A fault makes the core fail the way a real one might, here twice and
// then no more, so a test can check that the outpost retries.
func ExampleServer_Fault() {
	core, err := outposttest.NewServer(outposttest.DemoBlueprint)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer core.Close()
	core.Fault(outposttest.Fault{PathPrefix: "/api/v3/outposts/", Status: http.StatusServiceUnavailable, Count: 2})

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for range 3 {
		req, _ := http.NewRequest("GET", core.URL()+"/api/v3/outposts/instances/", nil)
		req.Header.Set("Authorization", "Bearer "+core.Token("demo-proxy"))
		resp, err := client.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	// Output:
	// 503
	// 503
	// 200
}
