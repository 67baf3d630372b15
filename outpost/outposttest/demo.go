package outposttest

import _ "embed"

// DemoBlueprint is the blueprint of `akoutpost demo`: the outposts
// demo-proxy (applications whoami in proxy mode at
// http://whoami.localhost:9000, upstream from $AKOUTPOST_DEMO_UPSTREAM or
// http://127.0.0.1:9080, and forward in forward_single mode at
// http://forward.localhost:9000) and demo-ldap (base DN
// dc=ldap,dc=goauthentik,dc=io). See the package documentation for the
// users and their passwords.
//
//go:embed testdata/demo.yaml
var DemoBlueprint []byte
