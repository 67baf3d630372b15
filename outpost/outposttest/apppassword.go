package outposttest

// App passwords: authentik_core.token entries with intent app_password.
// authentik's token endpoint takes one as the password of the
// client_credentials (and password) grant, which the proxy's header
// authentication uses; the user's own password is refused there, so a
// user with an authenticator cannot get tokens with the password alone.

type appPassword struct {
	identifier string
	key        string
	user       *user
}

// applyToken applies an authentik_core.token entry: app passwords here,
// API tokens in applyAPIToken.
func applyToken(m *model, existing any, f fields, ident string) (any, error) {
	intent := "api"
	if err := f.str("intent", &intent); err != nil {
		return nil, err
	}
	if intent != "app_password" {
		return applyAPIToken(m, existing, f, ident)
	}
	t, _ := existing.(*appPassword)
	if t == nil {
		t = &appPassword{}
		m.appPasses = append(m.appPasses, t)
	}
	var description string
	errs := []error{f.str("identifier", &t.identifier), f.str("key", &t.key), ref(f, "user", &t.user),
		f.str("description", &description)}
	if err := firstErr(errs); err != nil {
		return nil, err
	}
	if t.identifier == "" {
		return nil, f.errorf("identifier", "is required")
	}
	if t.user == nil {
		return nil, f.errorf("user", "is required")
	}
	if t.key == "" {
		t.key = m.derive(64, "app password", t.identifier)
	}
	return t, nil
}

// appPasswordValid reports whether key is one of u's app passwords.
// Callers hold s.mu.
func (m *model) appPasswordValid(u *user, key string) bool {
	if key == "" {
		return false
	}
	for _, t := range m.appPasses {
		if t.user == u && constantTimeEqual(t.key, key) {
			return true
		}
	}
	return false
}
