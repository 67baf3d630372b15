package outposttest

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
)

func usernames(a answer) []string {
	var out []string
	for _, r := range a.results() {
		out = append(out, r.(map[string]any)["username"].(string))
	}
	return out
}

func TestUsersFilters(t *testing.T) {
	s := startDemo(t)
	c := client(t)
	tok := s.Token("demo-ldap")
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"username=alice", []string{"alice"}},
		{"search=EXAMPLE.com", []string{"alice", "bob", "carol"}},
		{"groups_by_name=demo-admins", []string{"alice"}},
		{"groups_by_name=demo-admins&groups_by_name=demo-users", []string{"alice", "bob", "carol"}},
		{"type=service_account", []string{"ldap-bind"}},
		{"email=bob@example.com&include_groups=true", []string{"bob"}},
		{"is_superuser=true", nil},
		{"attributes=" + url.QueryEscape(`{"basic_user":"alice"}`), []string{"alice"}},
		{"username=alice&ordering=-username", []string{"alice"}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			a := call(t, c, "GET", s.URL()+"/api/v3/core/users/?"+tc.query, tok, nil)
			checkSchema(t, "PaginatedUserList", a.json)
			got := usernames(a)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
	a := call(t, c, "GET", s.URL()+"/api/v3/core/users/?username=alice&include_groups=false", tok, nil)
	if u := a.results()[0].(map[string]any); u["groups_obj"] != nil || len(u["groups"].([]any)) != 2 {
		t.Errorf("include_groups=false: %v", u)
	}
}

func TestGroups(t *testing.T) {
	s := startDemo(t)
	c := client(t)
	tok := s.Token("demo-ldap")
	a := call(t, c, "GET", s.URL()+"/api/v3/core/groups/?include_users=true&include_children=true&include_parents=true", tok, nil)
	checkSchema(t, "PaginatedGroupList", a.json)
	if len(a.results()) != 2 {
		t.Fatalf("groups = %s", a.body)
	}
	admins := a.results()[0].(map[string]any)
	if admins["name"] != "demo-admins" || len(admins["users_obj"].([]any)) != 1 || len(admins["parents_obj"].([]any)) != 1 {
		t.Errorf("demo-admins = %v", admins)
	}
	users := a.results()[1].(map[string]any)
	if len(users["children_obj"].([]any)) != 1 || len(users["users"].([]any)) != 3 {
		t.Errorf("demo-users = %v", users)
	}
	a = call(t, c, "GET", s.URL()+"/api/v3/core/groups/?include_users=false&members_by_username=bob", tok, nil)
	checkSchema(t, "PaginatedGroupList", a.json)
	if r := a.results(); len(r) != 1 || r[0].(map[string]any)["users_obj"] != nil {
		t.Errorf("members_by_username=bob without users: %s", a.body)
	}
	one := call(t, c, "GET", s.URL()+"/api/v3/core/groups/"+admins["pk"].(string)+"/", tok, nil)
	checkSchema(t, "Group", one.json)
	if one.status != http.StatusOK {
		t.Errorf("retrieve: %d", one.status)
	}
}

// A user's own session sees only the user and the user's groups, while the
// LDAP outpost's token sees everyone.
func TestSessionSeesItself(t *testing.T) {
	s := startDemo(t)
	f := newFlowClient(t, s, "default-authentication-flow")
	f.token = ""
	if ch := f.bind("bob", password("bob-password")); ch["component"] != componentRedirect {
		t.Fatal(ch)
	}
	_, users := f.do("GET", s.URL()+"/api/v3/core/users/", nil)
	if r := users["results"].([]any); len(r) != 1 || r[0].(map[string]any)["username"] != "bob" {
		t.Errorf("bob sees users %v", r)
	}
	_, groups := f.do("GET", s.URL()+"/api/v3/core/groups/", nil)
	if r := groups["results"].([]any); len(r) != 1 {
		t.Errorf("bob sees groups %v", r)
	}
	if status, _ := f.do("GET", s.URL()+"/api/v3/outposts/instances/", nil); status != 200 {
		t.Errorf("outposts list for a user: %d", status)
	}
}

// TestDirectoryCacheFollowsEdits: the lists are served from a cache kept
// between pages; every edit must show in the next page.
func TestDirectoryCacheFollowsEdits(t *testing.T) {
	s := startDemo(t)
	c := client(t)
	tok := s.Token("demo-ldap")
	users := func() []string {
		return usernames(call(t, c, "GET", s.URL()+"/api/v3/core/users/", tok, nil))
	}
	members := func(group string) []string {
		a := call(t, c, "GET", s.URL()+"/api/v3/core/groups/?include_users=true", tok, nil)
		var out []string
		for _, r := range a.results() {
			g := r.(map[string]any)
			if g["name"] != group {
				continue
			}
			for _, u := range g["users_obj"].([]any) {
				out = append(out, u.(map[string]any)["username"].(string))
			}
		}
		return out
	}
	if got := users(); !slices.Contains(got, "carol") {
		t.Fatalf("users before the edit: %v", got)
	}
	before := members("demo-admins")
	if err := s.UpdateUser("carol", map[string]any{"username": "aaron"}); err != nil {
		t.Fatal(err)
	}
	if got := users(); slices.Contains(got, "carol") || slices.Index(got, "aaron") < 0 ||
		slices.Index(got, "aaron") > slices.Index(got, "alice") {
		t.Errorf("after renaming carol to aaron, the list is %v", got)
	}
	if err := s.AddUserToGroup("bob", "demo-admins"); err != nil {
		t.Fatal(err)
	}
	if got := members("demo-admins"); len(got) != len(before)+1 {
		t.Errorf("demo-admins members %v after adding bob, before %v", got, before)
	}
}
