package ldap

import (
	"context"
	"net"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/akoutpost/akoutpost/ldap/ldapserver"
)

// handler adapts the provider to the protocol layer. It is unexported so
// the provider's exported API stays the outpost.Provider contract.
type handler struct{ p *Provider }

var (
	_ ldapserver.Handler      = handler{}
	_ ldapserver.ConnObserver = handler{}
)

func (h handler) ConnOpened(c *ldapserver.Conn) error {
	h.p.conns.open(c)
	return nil
}

func (h handler) ConnClosed(c *ldapserver.Conn) { h.p.conns.closed(c) }

func (h handler) Bind(ctx context.Context, c *ldapserver.Conn, req *ldapserver.BindRequest) ldapserver.Result {
	start := time.Now()
	cs := h.p.conns.get(c)
	prev := cs.identity()
	// Anonymous until this bind succeeds (RFC 4511 4.2.1).
	cs.setIdentity(nil)
	res := h.p.bind(ctx, req.DN, req.Password, remoteIP(c.RemoteAddr()), prev)
	app := ""
	if st := h.p.state.Load(); st != nil && res.id != nil {
		if rt := st.byPK(res.id.providerPK); rt != nil {
			app = rt.cfg.AppSlug
		}
	} else if st != nil {
		if rt, _ := st.routeBind(req.DN); rt != nil {
			app = rt.cfg.AppSlug
		}
	}
	h.p.observe("bind", app, res.reason, start)
	if res.anonymous && res.code == goldap.LDAPResultSuccess {
		h.p.logger().Debug("LDAP anonymous bind")
		return ldapserver.Result{}
	}
	if res.code != goldap.LDAPResultSuccess || res.id == nil {
		if res.code == goldap.LDAPResultSuccess {
			// Defence in depth: success without an identity is a bug.
			res = refuse(goldap.LDAPResultOther, "internal", "internal error")
		}
		h.p.logger().Info("LDAP bind refused", "dn", req.DN, "code", res.code, "reason", res.reason)
		return ldapserver.Result{Code: res.code, Message: res.msg}
	}
	cs.setIdentity(res.id)
	h.p.logger().Debug("LDAP bind", "dn", req.DN)
	return ldapserver.Result{}
}

func (h handler) Search(ctx context.Context, c *ldapserver.Conn, req *ldapserver.SearchRequest, w ldapserver.SearchWriter) ldapserver.Result {
	start := time.Now()
	out := h.p.search(ctx, h.p.conns.get(c), req, w)
	h.p.observe("search", out.app, out.reason, start)
	return out.Result
}

func (h handler) Compare(ctx context.Context, c *ldapserver.Conn, req *ldapserver.CompareRequest) ldapserver.Result {
	start := time.Now()
	out := h.p.compare(ctx, h.p.conns.get(c), req)
	h.p.observe("compare", out.app, out.reason, start)
	return out.Result
}

// compare answers whether an entry the identity may see has a value.
func (p *Provider) compare(ctx context.Context, cs *connState, req *ldapserver.CompareRequest) searchOutcome {
	key, err := keyOf(req.DN)
	if err != nil {
		return searchFail(goldap.LDAPResultInvalidDNSyntax, "invalid_base_dn", "", "invalid DN")
	}
	st := p.state.Load()
	if st == nil {
		return searchFail(goldap.LDAPResultUnavailable, "no_provider", "", "the provider is not configured yet")
	}
	rt := st.route(key)
	if rt == nil {
		return searchFail(goldap.LDAPResultNoSuchObject, "no_provider", "", "no LDAP provider serves this DN")
	}
	id := cs.identity()
	if id == nil || id.providerPK != rt.cfg.PK {
		return searchFail(goldap.LDAPResultInsufficientAccessRights, "empty_bind_dn", rt.cfg.AppSlug, "bind first")
	}
	f := equalityFilter(req.Attribute, req.Value)
	view, err := p.view(ctx, rt, id, req.DN, key, f)
	if err != nil {
		r := coreFailure(err, "", "reading the directory")
		return searchFail(r.code, "directory_fail", rt.cfg.AppSlug, r.msg)
	}
	i, ok := view.find(key)
	if !ok {
		return searchFail(goldap.LDAPResultNoSuchObject, "no_such_object", rt.cfg.AppSlug, "no such entry")
	}
	e := view.entries[i]
	if !e.has(req.Attribute) {
		return searchFail(goldap.LDAPResultNoSuchAttribute, "", rt.cfg.AppSlug, "no such attribute")
	}
	code := uint16(goldap.LDAPResultCompareFalse)
	if f.matches(e) {
		code = goldap.LDAPResultCompareTrue
	}
	return searchOutcome{Result: ldapserver.Result{Code: code}, app: rt.cfg.AppSlug}
}

// observe records an operation's duration and, when refused, its reason.
func (p *Provider) observe(op, app, reason string, start time.Time) {
	l := p.deps
	name := ""
	if st := p.state.Load(); st != nil {
		name = st.outpostName
	}
	l.metrics.RequestDuration.WithLabelValues(name, op, app).Observe(time.Since(start).Seconds())
	if reason != "" {
		l.metrics.RequestsRejected.WithLabelValues(name, op, reason, app).Inc()
	}
}

func remoteIP(a net.Addr) string {
	if a == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
