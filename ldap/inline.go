package ldap

import "github.com/akoutpost/akoutpost/ldap/ldapserver"

var _ ldapserver.InlineSearcher = handler{}

// InlineSearch reports whether a search is answered from memory at once,
// so the connection may run it on its reader: the root DSE and the schema,
// a search refused or empty before any lookup (an invalid base, an
// anonymous or foreign identity), and a search of a cached directory that
// holds what the bound identity may see. A search that may call the core
// (direct mode, a cached provider before its first load, a restricted
// user missing from the cache) runs on a worker, so that abandon, unbind
// and the connection's other operations are read meanwhile.
func (h handler) InlineSearch(c *ldapserver.Conn, req *ldapserver.SearchRequest) bool {
	cs := h.p.conns.get(c)
	key, err := cs.baseKey(req.BaseDN)
	if err != nil || key == "" || key == "cn=subschema" {
		return true
	}
	st := h.p.state.Load()
	if st == nil {
		return true
	}
	rt := st.route(key)
	id := cs.identity()
	if rt == nil || id == nil || id.providerPK != rt.cfg.PK {
		return true
	}
	snap := rt.snap.Load()
	if snap == nil {
		return false
	}
	return id.canSearch || snap.user(id.userPK) != nil
}
