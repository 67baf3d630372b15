package proxy

import (
	"html/template"
	"net/http"
	"net/url"
)

var errorTemplate = template.Must(template.New("error").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1f2328;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.15);padding:2rem 2.5rem;max-width:34rem}
h1{font-size:1.4rem;margin:0 0 1rem}
p{line-height:1.5}
a{color:#0969da}
small{color:#656d76}
</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{if .Retry}}<p><a href="{{.Retry}}">Log in again</a></p>{{end}}
<small>authentik outpost · status {{.Status}}</small>
</main>
</body>
</html>
`))

type errorData struct {
	Title   string
	Message string
	Retry   string
	Status  int
}

// errorPage answers a browser with a small HTML page: a title and a
// message meant for the user, never an internal error or a secret.
func (a *application) errorPage(w http.ResponseWriter, r *http.Request, status int, title, message string) {
	a.renderError(w, status, errorData{Title: title, Message: message, Status: status})
}

func (a *application) renderError(w http.ResponseWriter, status int, d errorData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Location")
	w.WriteHeader(status)
	errorTemplate.Execute(w, d)
}

// loginError shows why a login failed, with a link that starts a new one
// returning to target (already validated) or the external host.
func (a *application) loginError(w http.ResponseWriter, r *http.Request, status int, message, target string) {
	if target == "" {
		target = a.external.String()
	}
	retry := a.external.ResolveReference(&url.URL{Path: pathStart})
	retry.RawQuery = url.Values{"rd": {target}}.Encode()
	a.renderError(w, status, errorData{Title: "Login failed", Message: message, Retry: retry.String(), Status: status})
}

// serverError logs err for the operator and shows the user a generic page.
func (a *application) serverError(w http.ResponseWriter, r *http.Request, what string, err error) {
	a.p.logger().Error(what, "provider", a.name, "error", err)
	a.errorPage(w, r, http.StatusInternalServerError, "Something went wrong",
		"The outpost could not complete this request. Please try again later.")
}
