package outposttest_test

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

func Example() {
	core, err := outposttest.NewServer([]byte(`version: 1
entries:
  - model: authentik_providers_ldap.ldapprovider
    id: ldap
    identifiers: {name: ldap}
    attrs: {base_dn: "dc=example,dc=com"}
  - model: authentik_core.application
    identifiers: {slug: ldap}
    attrs: {name: LDAP, provider: !KeyOf ldap}
  - model: authentik_outposts.outpost
    identifiers: {name: my-ldap}
    attrs: {type: ldap, providers: [!KeyOf ldap]}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer core.Close()

	// An outpost would be configured with core.URL() and this token.
	req, _ := http.NewRequest("GET", core.URL()+"/api/v3/outposts/ldap/", nil)
	req.Header.Set("Authorization", "Bearer "+core.Token("my-ldap"))
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var page struct {
		Results []struct {
			Name         string `json:"name"`
			BaseDN       string `json:"base_dn"`
			BindFlowSlug string `json:"bind_flow_slug"`
		} `json:"results"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&page)
	fmt.Printf("%+v\n", page.Results)
	// Output: [{Name:ldap BaseDN:dc=example,dc=com BindFlowSlug:default-authentication-flow}]
}
