package outpost

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// A Provider serves one outpost type ("proxy", "ldap", "radius", or a type
// of the caller's own). The outpost builds it through the [Factory]
// registered for the type the core reports, hands it each configuration
// fetched from the core, and runs it.
//
// Optional capabilities are found by type assertion: a provider that also
// implements [MessageHandler] receives the control channel's
// provider-specific and session-end messages, and a provider that is an
// [net/http.Handler] can be mounted in a host's mux.
type Provider interface {
	// Apply installs a new configuration. The outpost calls it once before
	// Serve, and again after every refresh, possibly while Serve runs, but
	// never twice at once. It returns nil when every provider object was
	// applied; an *ApplyError when some (or all) were refused and the rest
	// are served; any other error when nothing was applied and the
	// previous configuration stays. One broken object must never keep the
	// others from being served.
	Apply(ctx context.Context, u Update) error

	// Serve serves clients until ctx ends, then drains in-flight work within
	// a bound and returns after every goroutine it started has ended.
	Serve(ctx context.Context) error
}

// A Factory builds the provider of an outpost of one type. The outpost
// calls it once, when the core has first told it the outpost's type and
// before the first Apply; an error stops [Outpost.Run] with it. A factory
// opens what the provider serves on (its listeners), so an outpost of
// another type never opens them.
type Factory func(ctx context.Context, d Deps) (Provider, error)

// Deps is what the outpost lends the provider it builds, for the
// provider's whole life.
type Deps struct {
	// Outpost is the outpost as first fetched. Later changes (a rename, a
	// new browser URL) arrive in each Update.
	Outpost Info
	// Settings are the outpost's settings as first fetched; each Update
	// carries the current ones.
	Settings Settings
	// API is the client for the core, authenticated with the outpost's
	// token (which may rotate).
	API *Client
	// Logger follows the outpost's live log level. Never nil when the
	// outpost builds the provider.
	Logger *slog.Logger
	// Registerer is where the provider registers its collectors: the
	// host's registry for an embedded outpost. Never nil when the outpost
	// builds the provider.
	Registerer prometheus.Registerer
	// Certificates fetches and caches the core's certificate/key pairs.
	Certificates *Certificates
}

// WithDefaults returns d with a discarding Logger and a private registry
// in place of nil ones, for a provider built outside an outpost (a test,
// a host wiring it by hand).
func (d Deps) WithDefaults() Deps {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Registerer == nil {
		d.Registerer = prometheus.NewRegistry()
	}
	return d
}

// FactoryOf makes the Factory of a provider constructor: the outpost's
// context is not needed to build most providers.
func FactoryOf[P Provider](build func(Deps) (P, error)) Factory {
	return func(_ context.Context, d Deps) (Provider, error) {
		p, err := build(d)
		if err != nil {
			return nil, err // not a typed nil in an interface
		}
		return p, nil
	}
}

// MessageHandler is implemented by providers that act on control channel
// messages other than acknowledgements, hellos and update triggers, such as
// [InstructionSessionEnd].
type MessageHandler interface {
	HandleMessage(ctx context.Context, m Message) error
}

// Update is a configuration fetched from the core.
type Update struct {
	// Outpost describes the outpost object the token belongs to.
	Outpost Info
	// Settings is the outpost's decoded configuration.
	Settings Settings
	// Providers holds the items of /api/v3/outposts/<type>/, every page, in
	// the core's JSON. Each provider decodes its own wire type.
	Providers []json.RawMessage
}

// Info identifies an outpost and the running instance of it.
type Info struct {
	// PK is the outpost's primary key (a UUID).
	PK string
	// Name is the outpost's name; it labels metrics.
	Name string
	// Type is the outpost type the core reports.
	Type string
	// Managed is "goauthentik.io/outposts/embedded" for the embedded outpost.
	Managed string
	// InstanceUUID is new on every start of the process and names this
	// replica to the core.
	InstanceUUID string
	// Version is this implementation's version, reported in hellos.
	Version string
	// BrowserURL is the core URL browsers are sent to: the
	// AUTHENTIK_HOST_BROWSER of the config, else the outpost setting
	// authentik_host_browser, else, for a core at an internal address, the
	// setting authentik_host, else the core URL (see Config.BrowserURL).
	BrowserURL string
}

// Control channel instructions, as authentik numbers them.
const (
	InstructionAck              = 0
	InstructionHello            = 1
	InstructionTriggerUpdate    = 2
	InstructionProviderSpecific = 3
	InstructionSessionEnd       = 4
)

// Message is one control channel frame.
type Message struct {
	Instruction int            `json:"instruction"`
	Args        map[string]any `json:"args"`
}

// ApplyError is what Apply returns when it refused some provider objects
// and serves the others: the configuration was applied, in part.
type ApplyError struct {
	// Applied is how many provider objects are served now.
	Applied int
	// Refused are the objects that are not served as the core describes
	// them, each with why. A provider may keep serving the previous version
	// of a refused object, and says so in its Err.
	Refused []RefusedObject
}

// RefusedObject is a provider object that Apply refused.
type RefusedObject struct {
	// Name is the provider object's name, or "#N" (its position in the
	// update) when it could not even be decoded.
	Name string
	Err  error
}

func (e *ApplyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d provider objects applied, %d refused", e.Applied, len(e.Refused))
	for i, r := range e.Refused {
		sep := "; "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(&b, "%s%s: %v", sep, r.Name, r.Err)
	}
	return b.String()
}

// Unwrap returns the refusals' errors, for errors.Is and errors.As.
func (e *ApplyError) Unwrap() []error {
	errs := make([]error, len(e.Refused))
	for i, r := range e.Refused {
		errs[i] = r.Err
	}
	return errs
}

// RefusedNames lists the names of the refused objects, for logs.
func (e *ApplyError) RefusedNames() []string {
	names := make([]string, len(e.Refused))
	for i, r := range e.Refused {
		names[i] = r.Name
	}
	return names
}

// ObjectName names a provider object that could not be used, for a
// RefusedObject: its "name" when it has one, else its position "#i"; and
// its primary key, when readable, so a provider can keep the object's
// previous version.
func ObjectName(raw json.RawMessage, i int) (name string, pk int) {
	var named struct {
		Name string `json:"name"`
		PK   int    `json:"pk"`
	}
	_ = json.Unmarshal(raw, &named) // what cannot be read stays zero
	if named.Name == "" {
		named.Name = fmt.Sprintf("#%d", i)
	}
	return named.Name, named.PK
}
