package ldap_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/akoutpost/akoutpost/ldap"
	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// An LDAP outpost against the test core's demo: alice binds through the
// default authentication flow and looks bob up.
func Example() {
	core, err := outposttest.NewServer(outposttest.DemoBlueprint)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer core.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	o, err := outpost.New(outpost.Config{CoreURL: core.URL(), Token: core.Token("demo-ldap"),
		Providers: map[string]outpost.Factory{
			"ldap": ldap.Factory(ldap.Config{LDAPListener: ln, Token: core.Token("demo-ldap")}),
		},
		Registerer: prometheus.NewRegistry(),
		Logger:     slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// Bind as alice once the outpost serves its configuration.
	<-o.Ready()
	c, err := goldap.DialURL("ldap://" + ln.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	if err := c.Bind("cn=alice,ou=users,dc=ldap,dc=goauthentik,dc=io", "alice-password"); err != nil {
		fmt.Println(err)
		return
	}

	res, err := c.Search(goldap.NewSearchRequest("dc=ldap,dc=goauthentik,dc=io", goldap.ScopeWholeSubtree,
		goldap.NeverDerefAliases, 0, 0, false, "(&(objectClass=user)(cn=bob))", []string{"mail", "memberOf"}, nil))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range res.Entries {
		fmt.Println(e.DN)
		fmt.Println(e.GetAttributeValue("mail"))
		fmt.Println(e.GetAttributeValues("memberOf"))
	}
	// Output:
	// cn=bob,ou=users,dc=ldap,dc=goauthentik,dc=io
	// bob@example.com
	// [cn=demo-users,ou=groups,dc=ldap,dc=goauthentik,dc=io]
}
