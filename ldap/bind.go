package ldap

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/flow"
)

// identity is who a connection is bound as.
type identity struct {
	providerPK int
	dn         string
	dnKey      string
	username   string // as the core spells it (users/me)
	userPK     int
	canSearch  bool
	sessionID  string // the core session, for session-end messages
	// userVersion is the user's version (see user.version) when the bind
	// was decided, if known; a refresh showing another forgets the bind.
	userVersion string
}

// bindResult is a bind's answer.
type bindResult struct {
	code   uint16
	msg    string // diagnostic message, safe for clients and logs
	reason string // metric reason, a fixed vocabulary; "" on success
	id     *identity
	// anonymous marks a successful anonymous bind (RFC 4513 5.1.1): the
	// connection stays without an identity.
	anonymous bool
}

func refuse(code uint16, reason, msg string) bindResult {
	return bindResult{code: code, reason: reason, msg: msg}
}

// coreFailure maps an error talking to the core to a result code: busy
// when the core said so, unavailable when it did not answer or failed,
// other for anything else (a 4xx we did not expect, a malformed answer).
// It is never success.
func coreFailure(err error, reason, what string) bindResult {
	code := uint16(goldap.LDAPResultOther)
	var fe *flow.Error
	var ae *outpost.APIError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code = goldap.LDAPResultUnavailable
	case errors.As(err, &fe):
		switch {
		case fe.Busy():
			code = goldap.LDAPResultBusy
		case fe.Unavailable():
			code = goldap.LDAPResultUnavailable
		}
	case errors.As(err, &ae):
		switch {
		case ae.StatusCode == 429 || ae.StatusCode == 503:
			code = goldap.LDAPResultBusy
		case ae.StatusCode >= 500:
			code = goldap.LDAPResultUnavailable
		}
	default:
		// Transport errors from the API client (connection refused after
		// retries) carry no status.
		code = goldap.LDAPResultUnavailable
	}
	return bindResult{code: code, reason: reason, msg: what + ": the core could not answer"}
}

// checkAccess is the answer of /outposts/ldap/{pk}/check_access/.
type checkAccess struct {
	HasSearchPermission bool `json:"has_search_permission"`
	Access              struct {
		Passing  bool     `json:"passing"`
		Messages []string `json:"messages"`
	} `json:"access"`
}

// sessionUser is the answer of /core/users/me/.
type sessionUser struct {
	User struct {
		PK       int    `json:"pk"`
		Username string `json:"username"`
	} `json:"user"`
}

// bindDirect authenticates username/password for provider rt through the
// flow executor and the access check. prev is the identity the connection
// was bound as before this bind, if any.
func (p *Provider) bindDirect(ctx context.Context, rt *provider, dn, dnKey, username, password, remoteIP string,
	prev *identity) (bindResult, *flow.Session) {
	res, err := p.deps.executor.Run(ctx, flow.Request{
		Flow: rt.cfg.BindFlow, Username: username, Password: password, MFA: rt.cfg.MFA, RemoteIP: remoteIP,
		Query: url.Values{"goauthentik.io/outpost/ldap": {"true"}},
	})
	if err != nil {
		return coreFailure(err, "flow_error", "running the bind flow"), nil
	}
	switch res.Outcome {
	case flow.OutcomeSuccess:
	case flow.OutcomeRejected, flow.OutcomeDenied:
		p.logger().Debug("bind rejected by the flow", "dn", dn, "stage", res.Stage, "reason", res.Reason)
		return refuse(goldap.LDAPResultInvalidCredentials, "invalid_credentials", "invalid credentials"), nil
	default:
		return refuse(goldap.LDAPResultOther, "flow_error", "the bind flow ended without a verdict"), nil
	}
	s := res.Session
	var (
		access     checkAccess
		me         sessionUser
		accessErr  error
		meErr      error
		wg         sync.WaitGroup
		accessPath = "/outposts/ldap/" + strconv.Itoa(rt.cfg.PK) + "/check_access/"
	)
	if prev != nil && prev.providerPK == rt.cfg.PK && prev.dnKey == dnKey && res.User != "" && res.User == prev.username {
		// A client rebinding as the user it was bound as, whom the core
		// just named again as the flow's user: the user is known, so
		// only the access check, which may have changed, is asked. (A
		// user deleted and recreated under the same name meanwhile keeps
		// the old pk here, which finds no entry: it fails closed.)
		me.User.PK, me.User.Username = prev.userPK, prev.username
	} else {
		// The access check and the user lookup are independent: ask both
		// at once, since every bind waits for them (authentik asked in
		// turn).
		wg.Add(1)
		go func() {
			defer wg.Done()
			meErr = s.Get(ctx, "/core/users/me/", nil, &me)
		}()
	}
	accessErr = s.Get(ctx, accessPath, url.Values{"app_slug": {rt.cfg.AppSlug}}, &access)
	wg.Wait()
	if accessErr != nil {
		return coreFailure(accessErr, "access_check_fail", "checking access"), nil
	}
	if !access.Access.Passing {
		return refuse(goldap.LDAPResultInsufficientAccessRights, "access_denied",
			"access to the application is denied"), nil
	}
	if meErr != nil {
		return coreFailure(meErr, "user_info_fail", "reading the user"), nil
	}
	if me.User.Username == "" {
		return refuse(goldap.LDAPResultOther, "user_info_fail", "the core returned no user"), nil
	}
	return bindResult{code: goldap.LDAPResultSuccess, id: &identity{
		providerPK: rt.cfg.PK, dn: dn, dnKey: dnKey, username: me.User.Username, userPK: me.User.PK,
		canSearch: access.HasSearchPermission, sessionID: s.ID(),
	}}, s
}

// bind decides a simple bind. It never returns success unless the core
// said yes (or cached bind mode remembers that it did for this password).
// prev is who the connection was bound as before, nil if anonymous.
func (p *Provider) bind(ctx context.Context, dn, password, remoteIP string, prev *identity) (res bindResult) {
	defer func() {
		if r := recover(); r != nil {
			// authentik answered success here (its named results were zero).
			p.logger().Error("bind panicked", "dn", dn, "panic", fmt.Sprint(r))
			res = refuse(goldap.LDAPResultOther, "panic", "internal error")
		}
	}()
	if dn == "" {
		if password != "" {
			return refuse(goldap.LDAPResultUnwillingToPerform, "no_provider", "a password without a DN")
		}
		// RFC 4513 5.1.1: an anonymous bind succeeds and leaves the
		// connection anonymous; it may read the root DSE and the schema
		// and nothing else. Clients (ldapsearch -x, ldap3, SSSD) bind so
		// before they read the root DSE.
		return bindResult{code: goldap.LDAPResultSuccess, anonymous: true}
	}
	st := p.state.Load()
	if st == nil {
		return refuse(goldap.LDAPResultUnavailable, "no_provider", "the provider is not configured yet")
	}
	var (
		rt       *provider
		username string
	)
	dnKey, plain := simpleKey(dn)
	if plain {
		rt = st.route(dnKey)
	} else {
		var err error
		if dnKey, err = keyOf(dn); err != nil {
			return refuse(goldap.LDAPResultInvalidDNSyntax, "invalid_bind_dn", invalidBindDN(err))
		}
		rt = st.route(dnKey)
		// Only DNs of the simple form can skip this before the cache:
		// they hold no hex form, no escapes and no spaces.
		if rt != nil {
			if username, err = bindUsername(dn, rt.cfg.usersKey); err != nil {
				return refuseBindDN(rt, err)
			}
		}
	}
	if rt == nil {
		return refuse(goldap.LDAPResultInvalidCredentials, "no_provider", "no LDAP provider serves this DN")
	}
	if password == "" {
		if _, err := bindUsername(dn, rt.cfg.usersKey); err != nil {
			return refuseBindDN(rt, err)
		}
		// RFC 4513 5.1.2: an unauthenticated bind; never ask the core.
		return refuse(goldap.LDAPResultUnwillingToPerform, "invalid_credentials", "unauthenticated binds are not allowed")
	}
	// A locked pair is refused before the bind cache too: otherwise a
	// guesser could go on guessing there and learn the password from the
	// one guess the cache accepts.
	pair := p.throttle.key(dnKey, remoteIP)
	if d, locked := p.throttle.locked(pair); locked {
		p.wait(ctx, d)
		return throttled()
	}
	if rt.cfg.CachedBind {
		// Only binds whose DN had the form cn=USER,ou=users,... were
		// stored, under the same key, so a hit needs no second parse of
		// the DN (it was a third of a cached bind's CPU).
		if id, ok := rt.binds.lookup(dnKey, password); ok {
			p.throttle.succeeded(pair)
			id.dn = dn
			return bindResult{code: goldap.LDAPResultSuccess, id: &id}
		}
	}
	if username == "" {
		var err error
		if username, err = bindUsername(dn, rt.cfg.usersKey); err != nil {
			return refuseBindDN(rt, err)
		}
	}
	a, d, err := p.throttle.begin(ctx, pair)
	if err != nil {
		// Locked meanwhile, or the client went away while the bind
		// waited for others of its pair.
		p.wait(ctx, d)
		return throttled()
	}
	res, s := p.bindDirect(ctx, rt, dn, dnKey, username, password, remoteIP, prev)
	o := outcomeOther
	switch {
	case res.code == goldap.LDAPResultSuccess:
		o = outcomeSuccess
	case res.code == goldap.LDAPResultInvalidCredentials:
		// Only the flow's verdict on the credentials is a failure; the
		// core failing to answer is not the client's doing.
		o = outcomeFailure
	}
	p.wait(ctx, a.end(o))
	if res.code == goldap.LDAPResultSuccess && rt.cfg.CachedBind && s != nil {
		res.id.userVersion = p.userVersion(ctx, rt, res.id)
		rt.binds.store(dnKey, password, *res.id, s.Expires())
	}
	return res
}

// throttled refuses a bind of a locked pair exactly as a wrong password
// is refused, so the client learns nothing from it; only the metric's
// reason tells them apart.
func throttled() bindResult {
	return refuse(goldap.LDAPResultInvalidCredentials, "throttled", "invalid credentials")
}

// refuseBindDN refuses a bind whose DN bindUsername refused: with
// invalidDNSyntax and the reason when the DN cannot name any user, with
// invalidCredentials when it names something else.
func refuseBindDN(rt *provider, err error) bindResult {
	var de *bindDNError
	if errors.As(err, &de) && de.syntax {
		return refuse(goldap.LDAPResultInvalidDNSyntax, "invalid_bind_dn", de.msg)
	}
	return refuse(goldap.LDAPResultInvalidCredentials, "invalid_bind_dn", "bind DNs have the form cn=USER,"+rt.cfg.usersDN)
}

// userVersion finds the version of the bound user, from the cached
// directory or else from the core, so a later refresh can tell whether the
// user changed. Empty when unknown (the bind is then forgotten at the next
// refresh that sees the user changed at all).
func (p *Provider) userVersion(ctx context.Context, rt *provider, id *identity) string {
	if snap := rt.snap.Load(); snap != nil {
		if u := snap.user(id.userPK); u != nil {
			return u.version()
		}
	}
	users, err := p.deps.dir.listUsers(ctx, url.Values{"username": {id.username}})
	if err != nil {
		return ""
	}
	for _, u := range users {
		if u.PK == id.userPK {
			return u.version()
		}
	}
	return ""
}
