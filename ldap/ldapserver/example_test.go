package ldapserver_test

import (
	"context"
	"fmt"
	"net"

	ldap "github.com/go-ldap/ldap/v3"

	"github.com/akoutpost/akoutpost/ldap/ldapserver"
)

// directory is a tiny Handler: one user who may bind, and one entry.
type directory struct{}

func (directory) Bind(ctx context.Context, c *ldapserver.Conn, req *ldapserver.BindRequest) ldapserver.Result {
	if req.DN == "cn=admin,dc=example,dc=org" && req.Password == "secret" {
		return ldapserver.Result{}
	}
	return ldapserver.Failure(ldap.LDAPResultInvalidCredentials, "invalid credentials")
}

func (directory) Search(ctx context.Context, c *ldapserver.Conn, req *ldapserver.SearchRequest, w ldapserver.SearchWriter) ldapserver.Result {
	if c.BoundDN() == "" {
		return ldapserver.Failure(ldap.LDAPResultInsufficientAccessRights, "bind first")
	}
	err := w.WriteEntry(&ldapserver.Entry{
		DN: "cn=alice,dc=example,dc=org",
		Attributes: []ldapserver.Attribute{
			{Type: "cn", Values: []string{"alice"}},
			{Type: "mail", Values: []string{"alice@example.org"}},
		},
	})
	if err != nil {
		return ldapserver.Failure(ldap.LDAPResultUnavailable, "search interrupted")
	}
	return ldapserver.Result{}
}

func (directory) Compare(ctx context.Context, c *ldapserver.Conn, req *ldapserver.CompareRequest) ldapserver.Result {
	return ldapserver.Result{Code: ldap.LDAPResultCompareFalse}
}

// Serve a Handler on a loopback listener and query it with go-ldap.
func Example_server() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	srv := &ldapserver.Server{Handler: directory{}}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() {
		stop()
		<-done // every connection has ended
	}()

	l, err := ldap.DialURL("ldap://" + ln.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	if err := l.Bind("cn=admin,dc=example,dc=org", "secret"); err != nil {
		fmt.Println(err)
		return
	}
	res, err := l.Search(ldap.NewSearchRequest("dc=example,dc=org", ldap.ScopeWholeSubtree,
		ldap.NeverDerefAliases, 0, 0, false, "(cn=alice)", nil, nil))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range res.Entries {
		fmt.Println(e.DN, e.GetAttributeValue("mail"))
	}
	// Output: cn=alice,dc=example,dc=org alice@example.org
}
