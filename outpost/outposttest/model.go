package outposttest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
)

// The in-memory model holds what the blueprint created. Objects are plain
// structs linked by pointers; the Server's mutex guards all of them.

type user struct {
	pk         int
	uuid       string
	username   string
	name       string
	email      string
	password   []byte // bcrypt hash; nil means no usable password
	isActive   bool
	userType   string
	path       string
	attributes map[string]any
	groups     []*group
	roles      []*role
	joined     time.Time
	updated    time.Time
	pwChanged  time.Time
	serviceOf  *outpostObj // set for outposts' service accounts
	lastLogin  *time.Time
}

type group struct {
	uuid        string
	numPK       int
	name        string
	isSuperuser bool
	parents     []*group
	attributes  map[string]any
	roles       []*role
}

type role struct {
	uuid string
	name string
}

type flow struct {
	uuid        string
	slug        string
	name        string
	title       string
	designation string
}

type application struct {
	uuid         string
	slug         string
	name         string
	provider     *provider
	backchannel  []*provider
	launchURL    string
	engineMode   string // "any" or "all"
	group        string
	metaDesc     string
	openInNewTab bool
}

// Provider kinds.
const (
	kindProxy  = "proxy"
	kindLDAP   = "ldap"
	kindRADIUS = "radius"
)

type redirectURI struct {
	mode string // "strict" or "regex"
	url  string
}

type provider struct {
	pk             int
	kind           string
	name           string
	authentication *flow
	authorization  *flow
	invalidation   *flow

	// proxy
	externalHost    string
	internalHost    string
	sslValidation   bool
	mode            string
	cookieDomain    string
	skipPathRegex   string
	basicAuth       bool
	basicUserAttr   string
	basicPassAttr   string
	interceptHeader bool
	tokenValidity   string // timedelta string, e.g. "hours=1"
	refreshValidity string
	clientID        string
	clientSecret    string
	cookieSecret    string
	signingKey      *certKeyPair
	redirectURIs    []redirectURI // extra ones from the blueprint

	// ldap
	baseDN        string
	tlsServerName string
	uidStart      int
	gidStart      int
	searchMode    string
	bindMode      string
	mfaSupport    bool

	// radius (mfaSupport too)
	sharedSecret   string
	clientNetworks string
	radiusAttrs    []RadiusAttribute // what property mappings would add

	certificate *certKeyPair
}

type outpostObj struct {
	uuid      string
	name      string
	otype     string
	providers []*provider
	config    map[string]any
	managed   string
	account   *user
	token     string
	conn      *serviceConn // the integration that deploys it, if any
}

type certKeyPair struct {
	uuid    string
	name    string
	certPEM string
	keyPEM  string
	managed string
}

type totpDevice struct {
	id        int
	user      *user
	name      string
	key       []byte
	digits    int
	step      int
	tolerance int // steps accepted either side of the current one
	t0, drift int // django-otp's start time and step offset
	confirmed bool
	lastUsed  *time.Time
	lastCode  int64 // counter of the last accepted code, replays refused
}

type staticDevice struct {
	id        int
	user      *user
	name      string
	tokens    []string
	confirmed bool
	lastUsed  *time.Time
}

// binding ties a user or group to an application: with bindings, only the
// users they name may use it (authentik's policy bindings, the user and
// group kind).
type binding struct {
	target  *application
	user    *user
	group   *group
	negate  bool
	enabled bool
	order   int
}

// grant is an object permission given to a user or a role.
type grant struct {
	permission string // "app_label.codename"
	object     any    // nil for a global permission
	user       *user
	role       *role
}

type model struct {
	secret string

	users     []*user
	groups    []*group
	roles     []*role
	flows     []*flow
	apps      []*application
	providers []*provider
	outposts  []*outpostObj
	conns     []*serviceConn
	apiTokens []*apiToken
	appPasses []*appPassword
	certs     []*certKeyPair
	totp      []*totpDevice
	static    []*staticDevice
	bindings  []*binding
	grants    []grant
	// stages and stageBindings are the flows' stages (stages.go).
	stages        []*stage
	stageBindings []*stageBinding

	nextUserPK     int
	nextProviderPK int
	nextDeviceID   int

	// byKey finds an object created by an earlier entry with the same model
	// and identifiers, so a later entry updates it as authentik does.
	byKey map[string]any

	// pwHashes memoizes password hashes by the password's digest.
	pwHashes map[[sha256.Size]byte][]byte
}

// epoch is the creation time of blueprint objects, fixed so that the same
// blueprint gives the same JSON.
var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func newModel(secret string) *model {
	m := &model{secret: secret, nextUserPK: 1, nextProviderPK: 1, nextDeviceID: 1, byKey: map[string]any{}}
	for _, f := range builtinFlows {
		m.flows = append(m.flows, &flow{
			uuid: m.uuid("authentik_flows.flow", f.slug), slug: f.slug, name: f.name,
			title: f.title, designation: f.designation,
		})
	}
	m.addBuiltinStages()
	return m
}

// Built-in flows, with the slugs a fresh authentik has.
var builtinFlows = []struct{ slug, name, title, designation string }{
	{"default-authentication-flow", "Default Authentication Flow", "Welcome to authentik!", "authentication"},
	{"default-provider-authorization-implicit-consent", "Authorize Application", "Redirecting to %(app)s", "authorization"},
	{"default-provider-authorization-explicit-consent", "Authorize Application", "Redirecting to %(app)s", "authorization"},
	{"default-invalidation-flow", "Logout", "Default Invalidation Flow", "invalidation"},
	{"default-provider-invalidation-flow", "Logged out of application", "You've logged out of %(app)s.", "invalidation"},
}

// uuid derives an object's UUID from its model and identifiers, so a core
// restarted with the same blueprint hands out the same UUIDs.
func (m *model) uuid(model string, ident string) string {
	ns := uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://akoutpost.invalid/outposttest/"+m.secret))
	return uuid.NewSHA1(ns, []byte(model+"\x00"+ident)).String()
}

// derive returns n hex characters derived from the secret and parts.
func (m *model) derive(n int, parts ...string) string {
	var out strings.Builder
	for i := 0; out.Len() < n; i++ {
		h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d\x00%s", m.secret, i, strings.Join(parts, "\x00"))))
		out.WriteString(hex.EncodeToString(h[:]))
	}
	return out.String()[:n]
}

// deriveAlnum returns n characters of [A-Z0-9] (the cookie secret's alphabet).
func (m *model) deriveAlnum(n int, parts ...string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	h := m.derive(2*n, parts...)
	b := make([]byte, n)
	for i := range b {
		v, _ := hex.DecodeString(h[2*i : 2*i+2])
		b[i] = alphabet[int(v[0])%len(alphabet)]
	}
	return string(b)
}

func (m *model) userByName(name string) *user {
	for _, u := range m.users {
		if u.username == name {
			return u
		}
	}
	return nil
}

func (m *model) userByPK(pk int) *user {
	for _, u := range m.users {
		if u.pk == pk {
			return u
		}
	}
	return nil
}

func (m *model) groupByName(name string) *group {
	for _, g := range m.groups {
		if g.name == name {
			return g
		}
	}
	return nil
}

func (m *model) flowBySlug(slug string) *flow {
	for _, f := range m.flows {
		if f.slug == slug {
			return f
		}
	}
	return nil
}

func (m *model) outpostByName(name string) *outpostObj {
	for _, o := range m.outposts {
		if o.name == name {
			return o
		}
	}
	return nil
}

func (m *model) outpostByToken(token string) *outpostObj {
	for _, o := range m.outposts {
		if o.token != "" && constantTimeEqual(o.token, token) {
			return o
		}
	}
	return nil
}

func (m *model) providerByName(name string) *provider {
	for _, p := range m.providers {
		if p.name == name {
			return p
		}
	}
	return nil
}

func (m *model) certByUUID(id string) *certKeyPair {
	for _, c := range m.certs {
		if c.uuid == id {
			return c
		}
	}
	return nil
}

// appOf returns the application a provider is assigned to, directly or
// as a backchannel provider (second result true).
func (m *model) appOf(p *provider) (*application, bool) {
	for _, a := range m.apps {
		if a.provider == p {
			return a, false
		}
	}
	for _, a := range m.apps {
		for _, b := range a.backchannel {
			if b == p {
				return a, true
			}
		}
	}
	return nil, false
}

// allGroups returns the user's groups and their ancestors, each once,
// ancestors first.
func allGroups(u *user) []*group {
	seen := map[*group]bool{}
	var out []*group
	var visit func(g *group)
	visit = func(g *group) {
		if seen[g] {
			return
		}
		seen[g] = true
		for _, p := range g.parents {
			visit(p)
		}
		out = append(out, g)
	}
	for _, g := range u.groups {
		visit(g)
	}
	return out
}

func (u *user) superuser() bool {
	for _, g := range allGroups(u) {
		if g.isSuperuser {
			return true
		}
	}
	return false
}

// mergedAttributes merges the attributes of the user's groups (ancestors
// first) and then the user's own, as authentik's group_attributes does.
func mergedAttributes(u *user) map[string]any {
	out := map[string]any{}
	for _, g := range allGroups(u) {
		deepMerge(out, g.attributes)
	}
	deepMerge(out, u.attributes)
	return out
}

func deepMerge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				deepMerge(dm, sm)
				continue
			}
			cp := map[string]any{}
			deepMerge(cp, sm)
			dst[k] = cp
			continue
		}
		dst[k] = v
	}
}

// uid is the user's hashed id, authentik's default OIDC subject.
func (m *model) uid(u *user) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s-%d", m.secret, u.pk)))
	return hex.EncodeToString(h[:])
}

// hasPermission reports whether u holds perm on obj (or globally), directly,
// through its roles or through its groups' roles. Superusers hold all.
func (m *model) hasPermission(u *user, perm string, obj any) bool {
	if u == nil {
		return false
	}
	if u.superuser() {
		return true
	}
	roles := map[*role]bool{}
	for _, r := range u.roles {
		roles[r] = true
	}
	for _, g := range allGroups(u) {
		for _, r := range g.roles {
			roles[r] = true
		}
	}
	for _, gr := range m.grants {
		if !samePermission(gr.permission, perm) || (gr.object != nil && gr.object != obj) {
			continue
		}
		if gr.user == u || gr.role != nil && roles[gr.role] {
			return true
		}
	}
	return false
}

// samePermission compares "app.codename" with "codename" forms.
func samePermission(a, b string) bool {
	short := func(s string) string {
		if i := strings.LastIndexByte(s, '.'); i >= 0 {
			return s[i+1:]
		}
		return s
	}
	return short(a) == short(b)
}

// canAccess evaluates an application's user and group bindings for u: no
// binding means everyone may; otherwise "any" mode needs one passing
// binding and "all" needs all of them.
func (m *model) canAccess(u *user, a *application) (bool, []string) {
	if !u.isActive {
		return false, []string{"user is not active"}
	}
	var bs []*binding
	for _, b := range m.bindings {
		if b.target == a && b.enabled {
			bs = append(bs, b)
		}
	}
	if len(bs) == 0 {
		return true, nil
	}
	sort.SliceStable(bs, func(i, j int) bool { return bs[i].order < bs[j].order })
	groups := allGroups(u)
	passed := 0
	for _, b := range bs {
		ok := false
		switch {
		case b.user != nil:
			ok = b.user == u
		case b.group != nil:
			for _, g := range groups {
				ok = ok || g == b.group
			}
		}
		if b.negate {
			ok = !ok
		}
		if ok {
			passed++
		}
	}
	if a.engineMode == "all" {
		if passed == len(bs) {
			return true, nil
		}
	} else if passed > 0 {
		return true, nil
	}
	return false, []string{"Policy binding(s) did not pass"}
}

func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	out := maps.Clone(m)
	for k, v := range out {
		if sm, ok := v.(map[string]any); ok {
			out[k] = cloneMap(sm)
		}
	}
	return out
}
