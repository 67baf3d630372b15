package ldap

import (
	"encoding/json"
	"fmt"
	"time"
)

// User is a user as the provider serves it, converted once from the API.
type user struct {
	PK          int
	Username    string
	Name        string
	Email       string
	UID         string
	Active      bool
	Superuser   bool
	Groups      []groupRef // direct groups
	Attributes  map[string]any
	DateJoined  time.Time
	LastUpdated time.Time
	PwdChanged  time.Time
	// raw is the hash of the user's JSON in a full fetch (knownUsers).
	raw uint64
}

// groupRef is a user's direct group as the users API embeds it.
type groupRef struct {
	PK         string
	NumPK      int
	Name       string
	Superuser  bool
	Attributes map[string]any
}

// group is a group as the provider serves it.
type group struct {
	PK         string
	NumPK      int
	Name       string
	Superuser  bool
	Members    []memberRef
	Parents    []string // names
	Children   []string // names
	Attributes map[string]any
	// raw is the hash of the group's JSON in a full fetch (knownUsers).
	raw uint64
}

type memberRef struct {
	PK       int
	Username string
}

// version is what a refresh compares to decide that a user changed in a
// way that makes cached binds of that user forgotten: deactivated,
// renamed, or a new password. last_updated is left out on purpose: every
// login updates it, which would make every bind forget itself.
func (u *user) version() string {
	return fmt.Sprintf("%t|%s|%s", u.Active, u.PwdChanged.UTC().Format(time.RFC3339Nano), u.Username)
}

// wireUser is the part of the API's User the provider reads.
type wireUser struct {
	PK          int               `json:"pk"`
	Username    string            `json:"username"`
	Name        string            `json:"name"`
	IsActive    *bool             `json:"is_active"`
	IsSuperuser bool              `json:"is_superuser"`
	Email       string            `json:"email"`
	UID         string            `json:"uid"`
	Attributes  map[string]any    `json:"attributes"`
	GroupsObj   []json.RawMessage `json:"groups_obj"`
	DateJoined  *time.Time        `json:"date_joined"`
	LastUpdated *time.Time        `json:"last_updated"`
	PwdChanged  *time.Time        `json:"password_change_date"`
}

type wirePartialGrp struct {
	PK          string         `json:"pk"`
	NumPK       int            `json:"num_pk"`
	Name        string         `json:"name"`
	IsSuperuser bool           `json:"is_superuser"`
	Attributes  map[string]any `json:"attributes"`
}

type wireGroup struct {
	PK          string           `json:"pk"`
	NumPK       int              `json:"num_pk"`
	Name        string           `json:"name"`
	IsSuperuser bool             `json:"is_superuser"`
	Attributes  map[string]any   `json:"attributes"`
	UsersObj    []wireMember     `json:"users_obj"`
	ParentsObj  []wirePartialGrp `json:"parents_obj"`
	ChildrenObj []wirePartialGrp `json:"children_obj"`
}

type wireMember struct {
	PK       int    `json:"pk"`
	Username string `json:"username"`
}

// groupRefs shares the groups users embed: in a directory of a million
// users, each in a few groups, the embedded groups would otherwise be
// decoded and kept once per membership. A group's JSON is the key of a
// one-group list, the JSON of a user's groups one after the other the key
// of that user's list, so users in the same groups share one list, and
// two users only share what the core sent to both alike. The lists are
// read-only.
type groupRefs map[string][]groupRef

// groups returns the groups of a user from their JSON.
func (refs groupRefs) groups(raws []json.RawMessage) ([]groupRef, error) {
	if len(raws) == 0 {
		return nil, nil
	}
	var key []byte
	if len(raws) == 1 {
		key = raws[0]
	} else {
		for _, raw := range raws {
			key = append(key, raw...)
		}
	}
	if l, ok := refs[string(key)]; ok {
		return l, nil
	}
	out := make([]groupRef, 0, len(raws))
	for _, raw := range raws {
		if l, ok := refs[string(raw)]; ok {
			out = append(out, l[0])
			continue
		}
		var g wirePartialGrp
		if err := json.Unmarshal(raw, &g); err != nil {
			return nil, err
		}
		ref := groupRef{PK: g.PK, NumPK: g.NumPK, Name: g.Name, Superuser: g.IsSuperuser, Attributes: nonEmpty(g.Attributes)}
		out = append(out, ref)
		if refs != nil && len(raws) > 1 {
			refs[string(raw)] = []groupRef{ref}
		}
	}
	out = out[:len(out):len(out)]
	if refs != nil {
		refs[string(key)] = out
	}
	return out, nil
}

func decodeUser(raw json.RawMessage, refs groupRefs) (user, error) {
	var w wireUser
	if err := json.Unmarshal(raw, &w); err != nil {
		return user{}, fmt.Errorf("decoding user: %w", err)
	}
	u := user{
		PK: w.PK, Username: w.Username, Name: w.Name, Email: w.Email, UID: w.UID,
		Active: w.IsActive != nil && *w.IsActive, Superuser: w.IsSuperuser, Attributes: nonEmpty(w.Attributes),
	}
	var err error
	if u.Groups, err = refs.groups(w.GroupsObj); err != nil {
		return user{}, fmt.Errorf("decoding user %q: group: %w", w.Username, err)
	}
	if w.DateJoined != nil {
		u.DateJoined = *w.DateJoined
	}
	if w.LastUpdated != nil {
		u.LastUpdated = *w.LastUpdated
	}
	if w.PwdChanged != nil {
		u.PwdChanged = *w.PwdChanged
	}
	return u, nil
}

// nonEmpty drops an empty attributes map: most users have none, and an
// empty map costs an allocation each. Reading a nil map is the same.
func nonEmpty(m map[string]any) map[string]any {
	if len(m) == 0 {
		return nil
	}
	return m
}

func decodeGroup(raw json.RawMessage) (group, error) {
	var w wireGroup
	if err := json.Unmarshal(raw, &w); err != nil {
		return group{}, fmt.Errorf("decoding group: %w", err)
	}
	g := group{PK: w.PK, NumPK: w.NumPK, Name: w.Name, Superuser: w.IsSuperuser, Attributes: nonEmpty(w.Attributes)}
	if len(w.UsersObj) > 0 {
		g.Members = make([]memberRef, 0, len(w.UsersObj))
	}
	for _, m := range w.UsersObj {
		g.Members = append(g.Members, memberRef(m))
	}
	for _, p := range w.ParentsObj {
		g.Parents = append(g.Parents, p.Name)
	}
	for _, c := range w.ChildrenObj {
		g.Children = append(g.Children, c.Name)
	}
	return g, nil
}
