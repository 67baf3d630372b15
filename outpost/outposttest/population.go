package outposttest

import (
	"fmt"
	"strconv"
)

// modelPopulation is a test core's own blueprint model, not authentik's: one
// entry that creates a numbered population of users and groups, for
// directories larger than a blueprint may list one object at a time (a
// million users would be eight million YAML values, beyond the document's
// bound, and gigabytes of parsed YAML).
//
//   - model: akoutpost_testcore.population
//     attrs: {users: 1000000, groups: 100000, members: 1, password: benchpass}
//
// creates groups group0..group(groups-1) and users user0..user(users-1),
// user i named "User i", with the password, in the members groups
// (i*members+j) mod groups for j < members: exactly the objects
// bench/genblueprint writes one entry each for, with the same identifiers.
const modelPopulation = "akoutpost_testcore.population"

func init() {
	modelAppliers[modelPopulation] = applier{set("users", "groups", "members", "password", "user_prefix",
		"group_prefix"), applyPopulation}
}

// maxPopulation bounds a population entry's users and groups.
const maxPopulation = 10_000_000

func applyPopulation(m *model, existing any, f fields, _ string) (any, error) {
	if existing != nil {
		return nil, f.errorf("users", "a population is created once")
	}
	users, groups, members := 0, 0, 1
	password, userPrefix, groupPrefix := "", "user", "group"
	if err := firstErr([]error{f.integer("users", &users), f.integer("groups", &groups), f.integer("members", &members),
		f.str("password", &password), f.str("user_prefix", &userPrefix), f.str("group_prefix", &groupPrefix)}); err != nil {
		return nil, err
	}
	switch {
	case users < 0 || users > maxPopulation:
		return nil, f.errorf("users", "must be between 0 and %d", maxPopulation)
	case groups < 0 || groups > maxPopulation:
		return nil, f.errorf("groups", "must be between 0 and %d", maxPopulation)
	case members < 0 || members > groups:
		return nil, f.errorf("members", "must be between 0 and groups (%d)", groups)
	}
	gs := make([]*group, groups)
	for i := range gs {
		name := groupPrefix + strconv.Itoa(i)
		g, err := applyGroup(m, nil, fields{entry: f.entry, v: map[string]any{"name": name}},
			fmt.Sprintf(`{"name":%q}`, name))
		if err != nil {
			return nil, err
		}
		gs[i] = g.(*group)
	}
	m.users = append(make([]*user, 0, len(m.users)+users), m.users...)
	for i := range users {
		username := userPrefix + strconv.Itoa(i)
		u := &user{pk: m.nextUserPK, uuid: m.uuid("authentik_core.user", fmt.Sprintf(`{"username":%q}`, username)),
			username: username, name: "User " + strconv.Itoa(i), isActive: true, userType: "internal", path: "users",
			attributes: map[string]any{}, joined: epoch, updated: epoch, pwChanged: epoch}
		m.nextUserPK++
		if members > 0 {
			u.groups = make([]*group, 0, members)
			for j := range members {
				g := gs[(i*members+j)%groups]
				if !containsPtr(u.groups, g) {
					u.groups = append(u.groups, g)
				}
			}
		}
		if err := m.setPassword(u, password); err != nil {
			return nil, f.errorf("password", "%v", err)
		}
		m.users = append(m.users, u)
	}
	return &population{users: users, groups: groups}, nil
}

// population is what a population entry leaves in the model's index of
// blueprint objects.
type population struct{ users, groups int }
