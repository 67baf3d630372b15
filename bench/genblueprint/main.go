// Command genblueprint writes a large directory for the LDAP benchmarks: a
// test-core blueprint with one LDAP provider in cached search and cached
// bind mode, its outpost, a service account that may search the whole
// directory, N users and M groups; and, optionally, the same population as
// LDIF for slapd, so both servers answer for the same people.
//
//	go run ./bench/genblueprint -users 100000 -groups 10000 -blueprint bp.yaml \
//	  -ldif slapd.ldif -ldif-base dc=example,dc=org
//
// Users are user0..user(N-1), all with the password of -password; groups
// are group0..group(M-1); user i is a member of the -members groups
// (i*K+j) mod M for j < K, which spreads members evenly. The outpost's
// token is not known here: `akoutpost testcore --blueprint FILE` prints it.
//
// With -provider radius the blueprint holds a RADIUS provider instead
// (radius-bench: the -radius-secret for NAS on 127.0.0.0/8 and ::1, the
// default authentication flow, authentik's default mfa_support), its
// application and its outpost, for bench/radius.sh; -freeradius-users FILE
// writes the same users for FreeRADIUS's files module, with their
// Cleartext-Password:
//
//	go run ./bench/genblueprint -provider radius -users 10000 -groups 1 -members 0 \
//	  -radius-secret s3cret -blueprint bp.yaml -freeradius-users users
//
// The blueprint is written in flow style, one line per object, because the
// test core bounds the values a blueprint may expand to; a user costs
// about eight of them.
package main

import (
	"bufio"
	"crypto/sha1" //nolint:gosec // {SSHA} is what slapd's userPassword understands; not our choice of hash.
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// baseDN is the LDAP provider's base DN, the one authentik's documentation
// and the demo use.
const baseDN = "dc=ldap,dc=goauthentik,dc=io"

type options struct {
	users, groups, members int
	password               string
	service, servicePW     string
	blueprint, ldif        string
	ldifBase               string
	cleartext              bool
	refresh                int
	provider               string
	radiusSecret           string
	freeradiusUsers        string
	population             bool
}

func main() {
	var o options
	fs := flag.NewFlagSet("genblueprint", flag.ContinueOnError)
	fs.IntVar(&o.users, "users", 1000, "number of users (user0..userN-1)")
	fs.IntVar(&o.groups, "groups", 100, "number of groups (group0..groupM-1)")
	fs.IntVar(&o.members, "members", 1, "groups each user is a member of")
	fs.StringVar(&o.password, "password", "benchpass", "password of every user")
	fs.StringVar(&o.service, "service", "ldapservice", "username of the bind/search service account")
	fs.StringVar(&o.servicePW, "service-password", "servicepass", "password of the service account")
	fs.StringVar(&o.blueprint, "blueprint", "", "blueprint `file` to write (required)")
	fs.StringVar(&o.ldif, "ldif", "", "LDIF `file` to write for slapd (optional)")
	fs.StringVar(&o.ldifBase, "ldif-base", "dc=example,dc=org", "base DN of the LDIF")
	fs.BoolVar(&o.cleartext, "ldif-cleartext", false, "store userPassword in cleartext instead of {SSHA}")
	fs.BoolVar(&o.population, "population", false, "write one test-core population entry for the users and groups "+
		"(always above 100,000 users)")
	fs.IntVar(&o.refresh, "refresh", 0, "the outpost's refresh interval in `seconds` (0: authentik's default)")
	fs.StringVar(&o.provider, "provider", "ldap", "the provider, application and outpost to write: ldap (ldap-bench) or radius (radius-bench)")
	fs.StringVar(&o.radiusSecret, "radius-secret", "benchsecret", "shared secret of the RADIUS provider")
	fs.StringVar(&o.freeradiusUsers, "freeradius-users", "", "FreeRADIUS users `file` to write (optional)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "genblueprint:", err)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "genblueprint:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	switch {
	case o.blueprint == "":
		return errors.New("-blueprint is required")
	case o.users < 1 || o.groups < 1:
		return errors.New("-users and -groups must be at least 1")
	case o.refresh < 0:
		return errors.New("-refresh must not be negative")
	case o.members < 0 || o.members > o.groups:
		return fmt.Errorf("-members must be between 0 and -groups (%d)", o.groups)
	case strings.ContainsAny(o.password+o.servicePW+o.service+o.radiusSecret, "\"\\\n"):
		return errors.New("passwords, the secret and the service name must not contain quotes, backslashes or newlines")
	case o.provider != "" && o.provider != "ldap" && o.provider != "radius":
		return fmt.Errorf("-provider %q: ldap or radius", o.provider)
	case o.provider == "radius" && o.radiusSecret == "":
		return errors.New("-radius-secret must not be empty")
	}
	if err := writeFile(o.blueprint, func(w io.Writer) error { return writeBlueprint(w, o) }); err != nil {
		return err
	}
	if o.ldif != "" {
		if err := writeFile(o.ldif, func(w io.Writer) error { return writeLDIF(w, o) }); err != nil {
			return err
		}
	}
	if o.freeradiusUsers != "" {
		return writeFile(o.freeradiusUsers, func(w io.Writer) error { return writeFreeRADIUSUsers(w, o) })
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	w := bufio.NewWriterSize(f, 1<<16)
	err = write(w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// groupsOf returns the groups user i is a member of.
func groupsOf(o options, i int) []int {
	out := make([]int, o.members)
	for j := range out {
		out[j] = (i*o.members + j) % o.groups
	}
	return out
}

func writeBlueprint(w io.Writer, o options) error {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("# Generated by bench/genblueprint: %d users, %d groups, %d group(s) per user.\n", o.users, o.groups, o.members)
	p("# Users user0..user%d, password %q. Base DN %s.\n", o.users-1, o.password, baseDN)
	p("# Service account: cn=%s,ou=users,%s password %q.\n", o.service, baseDN, o.servicePW)
	p("# The outpost's (%s-bench) token is printed by `akoutpost testcore --blueprint FILE`.\n", o.kind())
	p("version: 1\nmetadata: {name: genblueprint}\nentries:\n")
	p("  - {model: authentik_rbac.role, id: searchers, identifiers: {name: searchers}}\n")
	if o.population || o.users > maxListed {
		// One entry the test core expands (outposttest's
		// modelPopulation): the same users and groups, without a YAML
		// value for each.
		p("  - model: authentik_core.user\n    identifiers: {username: %s}\n", o.service)
		p("    attrs: {name: LDAP service account, password: \"%s\", type: service_account, roles: [!KeyOf searchers]}\n", o.servicePW)
		p("  - {model: akoutpost_testcore.population, attrs: {users: %d, groups: %d, members: %d, password: \"%s\"}}\n",
			o.users, o.groups, o.members, o.password)
	} else {
		writeListed(p, o)
	}
	if o.kind() == "radius" {
		p(`  - model: authentik_providers_radius.radiusprovider
    id: radius
    identifiers: {name: radius-bench}
    attrs:
      shared_secret: "%s"
      client_networks: 127.0.0.0/8, ::1/128
      mfa_support: true
      authorization_flow: !Find [authentik_flows.flow, [slug, default-authentication-flow]]
      invalidation_flow: !Find [authentik_flows.flow, [slug, default-invalidation-flow]]
  - {model: authentik_core.application, identifiers: {slug: radius-bench}, attrs: {name: RADIUS bench, provider: !KeyOf radius}}
  - {model: authentik_outposts.outpost, identifiers: {name: radius-bench}, attrs: {type: radius, providers: [!KeyOf radius]%s}}
`, o.radiusSecret, refreshConfig(o.refresh))
		return nil
	}
	p(`  - model: authentik_providers_ldap.ldapprovider
    id: ldap
    identifiers: {name: ldap-bench}
    attrs:
      base_dn: %s
      search_mode: cached
      bind_mode: cached
      authorization_flow: !Find [authentik_flows.flow, [slug, default-authentication-flow]]
      invalidation_flow: !Find [authentik_flows.flow, [slug, default-invalidation-flow]]
    permissions:
      - {permission: authentik_providers_ldap.search_full_directory, role: !KeyOf searchers}
  - {model: authentik_core.application, identifiers: {slug: ldap-bench}, attrs: {name: LDAP bench, provider: !KeyOf ldap}}
  - {model: authentik_outposts.outpost, identifiers: {name: ldap-bench}, attrs: {type: ldap, providers: [!KeyOf ldap]%s}}
`, baseDN, refreshConfig(o.refresh))
	return nil
}

// maxListed is the most users a blueprint lists one entry each: beyond it
// the test core's bound on a document's values is reached, so a
// population entry stands for them.
const maxListed = 100_000

// writeListed writes the groups, the service account and the users one
// entry each.
func writeListed(p func(string, ...any), o options) {
	for g := range o.groups {
		p("  - {model: authentik_core.group, id: g%d, identifiers: {name: group%d}}\n", g, g)
	}
	p("  - model: authentik_core.user\n    identifiers: {username: %s}\n", o.service)
	p("    attrs: {name: LDAP service account, password: \"%s\", type: service_account, roles: [!KeyOf searchers]}\n", o.servicePW)
	var sb strings.Builder
	for i := range o.users {
		sb.Reset()
		for j, g := range groupsOf(o, i) {
			if j > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "!KeyOf g%d", g)
		}
		p("  - {model: authentik_core.user, identifiers: {username: user%d}, attrs: {name: User %d, password: \"%s\", groups: [%s]}}\n",
			i, i, o.password, sb.String())
	}
}

// refreshConfig is the outpost config that sets its refresh interval.
func refreshConfig(seconds int) string {
	if seconds == 0 {
		return ""
	}
	return fmt.Sprintf(", config: {refresh_interval: \"seconds=%d\"}", seconds)
}

func writeLDIF(w io.Writer, o options) error {
	base := o.ldifBase
	attr, value, ok := strings.Cut(strings.SplitN(base, ",", 2)[0], "=")
	if !ok {
		return fmt.Errorf("-ldif-base %q is not a DN", base)
	}
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("# Generated by bench/genblueprint: %d users, %d groups, %d group(s) per user.\n", o.users, o.groups, o.members)
	p("# Service account: cn=%s,ou=users,%s password %s\n", o.service, base, o.servicePW)
	p("# Users: cn=userN,ou=users,%s (uid=userN) password %s\n\n", base, o.password)
	switch strings.ToLower(strings.TrimSpace(attr)) {
	case "dc":
		p("dn: %s\nobjectClass: top\nobjectClass: dcObject\nobjectClass: organization\ndc: %s\no: %s\n\n", base, value, value)
	case "o":
		p("dn: %s\nobjectClass: top\nobjectClass: organization\no: %s\n\n", base, value)
	case "ou":
		p("dn: %s\nobjectClass: top\nobjectClass: organizationalUnit\nou: %s\n\n", base, value)
	default:
		return fmt.Errorf("-ldif-base %q must start with dc=, o= or ou=", base)
	}
	p("dn: ou=users,%s\nobjectClass: organizationalUnit\nou: users\n\n", base)
	p("dn: ou=groups,%s\nobjectClass: organizationalUnit\nou: groups\n\n", base)
	serviceDN := fmt.Sprintf("cn=%s,ou=users,%s", o.service, base)
	p("dn: %s\nobjectClass: inetOrgPerson\ncn: %s\nuid: %s\nsn: service account\nuserPassword: %s\n\n",
		serviceDN, o.service, o.service, o.hash(o.servicePW, -1))
	members := make([][]int, o.groups)
	for i := range o.users {
		p("dn: cn=user%d,ou=users,%s\nobjectClass: inetOrgPerson\ncn: user%d\nuid: user%d\nsn: %d\n"+
			"displayName: User %d\nuserPassword: %s\n\n", i, base, i, i, i, i, o.hash(o.password, i))
		for _, g := range groupsOf(o, i) {
			members[g] = append(members[g], i)
		}
	}
	for g, ms := range members {
		p("dn: cn=group%d,ou=groups,%s\nobjectClass: groupOfNames\ncn: group%d\n", g, base, g)
		if len(ms) == 0 {
			// groupOfNames requires a member; the service account stands in.
			p("member: %s\n", serviceDN)
		}
		for _, u := range ms {
			p("member: cn=user%d,ou=users,%s\n", u, base)
		}
		p("\n")
	}
	return nil
}

// kind is the provider type the blueprint holds.
func (o options) kind() string {
	if o.provider == "radius" {
		return "radius"
	}
	return "ldap"
}

// writeFreeRADIUSUsers writes the users for FreeRADIUS's files module:
// one entry per user with its Cleartext-Password for the pap module, and
// no reply attributes.
func writeFreeRADIUSUsers(w io.Writer, o options) error {
	fmt.Fprintf(w, "# Generated by bench/genblueprint: users user0..user%d.\n", o.users-1)
	for i := range o.users {
		fmt.Fprintf(w, "user%d\tCleartext-Password := \"%s\"\n\n", i, o.password)
	}
	return nil
}

// hash encodes a userPassword. The salt is derived from the entry so that
// the same options give the same file.
func (o options) hash(pw string, i int) string {
	if o.cleartext {
		return pw
	}
	s := sha256.Sum256(fmt.Appendf(nil, "genblueprint salt %d", i))
	salt := s[:8]
	h := sha1.New() //nolint:gosec // see the import
	h.Write([]byte(pw))
	h.Write(salt)
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(h.Sum(nil), salt...))
}
