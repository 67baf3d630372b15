package outposttest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A population entry makes the users and groups that listing them one
// entry each makes: the directory API answers the same for both.
func TestPopulationMatchesListedEntries(t *testing.T) {
	const users, groups, members = 23, 5, 2
	tail := "  - {model: authentik_providers_ldap.ldapprovider, id: ldap, identifiers: {name: ldap}, attrs: {base_dn: \"dc=ldap,dc=goauthentik,dc=io\"}}\n" +
		"  - {model: authentik_outposts.outpost, identifiers: {name: ldap}, attrs: {type: ldap, providers: [!KeyOf ldap]}}\n"
	var listed strings.Builder
	listed.WriteString("version: 1\nentries:\n")
	for g := range groups {
		fmt.Fprintf(&listed, "  - {model: authentik_core.group, id: g%d, identifiers: {name: group%d}}\n", g, g)
	}
	for i := range users {
		fmt.Fprintf(&listed, "  - {model: authentik_core.user, identifiers: {username: user%d}, attrs: {name: User %d, password: pw, groups: [!KeyOf g%d, !KeyOf g%d]}}\n",
			i, i, (i*members)%groups, (i*members+1)%groups)
	}
	listed.WriteString(tail)
	population := "version: 1\nentries:\n" +
		fmt.Sprintf("  - {model: akoutpost_testcore.population, attrs: {users: %d, groups: %d, members: %d, password: pw}}\n", users, groups, members) +
		tail

	// The directory as an outpost reads it, without what differs between
	// two test cores by design (object uuids, derived from each core's
	// secret, and so uids and gidNumbers).
	read := func(bp string) string {
		t.Helper()
		s, err := NewUnstartedServer(Config{Blueprint: []byte(bp)})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var out strings.Builder
		for _, path := range []string{"/api/v3/core/users/?page_size=7&page=", "/api/v3/core/groups/?page_size=2&include_users=true&page="} {
			for page := 1; ; page++ {
				req := httptest.NewRequest(http.MethodGet, path+fmt.Sprint(page), nil)
				req.Header.Set("Authorization", "Bearer "+s.Token("ldap"))
				rec := httptest.NewRecorder()
				s.Handler().ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					t.Fatalf("%s%d: %d %s", path, page, rec.Code, rec.Body)
				}
				var body struct {
					Pagination struct{ Next int }
					Results    []map[string]any
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
					t.Fatal(err)
				}
				for _, r := range body.Results {
					for _, k := range []string{"uid", "uuid", "pk", "num_pk", "groups", "users"} {
						delete(r, k)
					}
					for _, k := range []string{"groups_obj", "users_obj"} {
						list, _ := r[k].([]any)
						for _, o := range list {
							for _, f := range []string{"pk", "num_pk", "uid"} {
								delete(o.(map[string]any), f)
							}
						}
					}
					b, _ := json.Marshal(r)
					out.Write(b)
					out.WriteByte('\n')
				}
				if body.Pagination.Next == 0 {
					break
				}
			}
		}
		return out.String()
	}
	want, got := read(listed.String()), read(population)
	if got != want {
		t.Errorf("a population entry serves\n%s\nlisted entries serve\n%s", got, want)
	}
	// And the outpost's service account.
	if n := strings.Count(got, "\n"); n != users+groups+1 {
		t.Errorf("%d objects listed, want %d", n, users+groups+1)
	}
}
