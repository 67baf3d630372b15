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
	PK          int              `json:"pk"`
	Username    string           `json:"username"`
	Name        string           `json:"name"`
	IsActive    *bool            `json:"is_active"`
	IsSuperuser bool             `json:"is_superuser"`
	Email       string           `json:"email"`
	UID         string           `json:"uid"`
	Attributes  map[string]any   `json:"attributes"`
	GroupsObj   []wirePartialGrp `json:"groups_obj"`
	DateJoined  *time.Time       `json:"date_joined"`
	LastUpdated *time.Time       `json:"last_updated"`
	PwdChanged  *time.Time       `json:"password_change_date"`
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

func decodeUser(raw json.RawMessage) (user, error) {
	var w wireUser
	if err := json.Unmarshal(raw, &w); err != nil {
		return user{}, fmt.Errorf("decoding user: %w", err)
	}
	u := user{
		PK: w.PK, Username: w.Username, Name: w.Name, Email: w.Email, UID: w.UID,
		Active: w.IsActive != nil && *w.IsActive, Superuser: w.IsSuperuser, Attributes: w.Attributes,
	}
	for _, g := range w.GroupsObj {
		u.Groups = append(u.Groups, groupRef{PK: g.PK, NumPK: g.NumPK, Name: g.Name,
			Superuser: g.IsSuperuser, Attributes: g.Attributes})
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

func decodeGroup(raw json.RawMessage) (group, error) {
	var w wireGroup
	if err := json.Unmarshal(raw, &w); err != nil {
		return group{}, fmt.Errorf("decoding group: %w", err)
	}
	g := group{PK: w.PK, NumPK: w.NumPK, Name: w.Name, Superuser: w.IsSuperuser, Attributes: w.Attributes}
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
