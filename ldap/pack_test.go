package ldap

import (
	"fmt"
	"slices"
	"testing"
)

// TestPackedLongLists checks value lists longer than a packed attribute's
// count holds, and the attributes around them.
func TestPackedLongLists(t *testing.T) {
	p := e2eProvider(t)
	var users []user
	var members []memberRef
	for i := range 5000 {
		users = append(users, user{PK: i + 1, Username: fmt.Sprintf("u%d", i), Active: true})
		members = append(members, memberRef{PK: i + 1, Username: fmt.Sprintf("u%d", i)})
	}
	s := buildSnapshot(p, users, []group{{PK: "g", NumPK: 1, Name: "big", Members: members}}, "test", true)
	i, ok := s.find(p.groupKey("big"))
	if !ok {
		t.Fatal("no group entry")
	}
	e := s.entries[i]
	for _, name := range []string{"member", "memberUid"} {
		a, ok := e.get(name)
		if !ok || len(a.Values) != 5000 {
			t.Fatalf("%s: %d values", name, len(a.Values))
		}
	}
	if a, _ := e.get("memberUid"); a.Values[0] != "u0" || a.Values[4999] != "u4999" {
		t.Errorf("memberUid %q ... %q", a.Values[0], a.Values[4999])
	}
	if a, _ := e.get("cn"); !slices.Equal(a.Values, []string{"big"}) {
		t.Errorf("cn %q", a.Values)
	}
	if got := s.postingsOf(indexedAttributes["memberuid"], "u4321"); !slices.Contains(got, i) {
		t.Errorf("memberUid=u4321 finds %v, not %d", got, i)
	}
}

// TestPackedNameEscape checks attributes whose names do not fit in the
// table's index, and an entry given more attributes than it made room for.
func TestPackedNameEscape(t *testing.T) {
	b := newBuilder(nil, 1)
	for i := range nameEscape {
		b.name(fmt.Sprintf("n%d", i))
	}
	e := b.entry()
	e.DN, e.Key = "cn=x", "cn=x"
	b.attributes(e, 1)
	b.put(e, "customOne", false, b.list([]string{"a", "b"}))
	b.add(e, "cn", true, b.one("x"))
	b.add(e, "CustomOne", false, b.one("ignored"))
	for i := range 10 {
		b.put(e, fmt.Sprintf("more%d", i), false, b.one(fmt.Sprint(i)))
	}
	if e.len() != 12 {
		t.Fatalf("%d attributes", e.len())
	}
	a, ok := e.get("customone")
	if !ok || a.Name != "customOne" || !slices.Equal(a.Values, []string{"a", "b"}) || a.Operational {
		t.Errorf("customOne: %+v %v", a, ok)
	}
	a, ok = e.get("commonName")
	if !ok || a.Name != "cn" || !slices.Equal(a.Values, []string{"x"}) || !a.Operational {
		t.Errorf("cn: %+v %v", a, ok)
	}
	if name, op := e.attrName(11); name != "more9" || op || e.attrKey(11) != "more9" ||
		!slices.Equal(e.attrValues(11), []string{"9"}) {
		t.Errorf("last attribute: %q %v %q %q", name, op, e.attrKey(11), e.attrValues(11))
	}
}
