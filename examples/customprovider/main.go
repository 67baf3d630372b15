// Command customprovider shows that the outpost's Provider interface is
// open: echoProvider, written here and nowhere in the library, serves an
// outpost type the library does not ship ("echo" by default). The outpost
// does the rest as for its own providers: it finds the outpost the token
// belongs to, lists /api/v3/outposts/<type>/ from the core, calls Apply
// with every provider object, keeps the websocket to the core and passes
// provider-specific messages to HandleMessage.
//
// echoProvider answers HTTP requests for each provider object's external
// host with the object's name and the request line, and shows the last
// announcement the core sent it.
//
// authentik (and the test core) only create proxy and LDAP outposts, so to
// try it by hand, let it serve a proxy outpost's objects with its own
// behaviour instead:
//
//	AUTHENTIK_HOST=http://127.0.0.1:9100 AUTHENTIK_TOKEN=... go run ./examples/customprovider -type proxy -listen 127.0.0.1:9000
//	curl -H 'Host: whoami.localhost:9000' http://127.0.0.1:9000/hello
//
// Its test serves the type "echo" for real, through a core that reports the
// demo's proxy outpost as an echo outpost.
package main

import (
	"context"
	"flag"
	"log/slog"
	"net"
	"os"
	"os/signal"

	"github.com/akoutpost/akoutpost/outpost"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "HTTP `address`")
	typ := flag.String("type", "echo", "outpost `type` to serve")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	ln, err := net.Listen("tcp", *listen)
	if err == nil {
		err = run(ctx, config{CoreURL: os.Getenv("AUTHENTIK_HOST"), Token: os.Getenv("AUTHENTIK_TOKEN"),
			Type: *typ, Listener: ln, Logger: log})
	}
	if err != nil {
		log.Error("customprovider stopped", "err", err)
		os.Exit(1)
	}
}

type config struct {
	CoreURL, Token string
	Type           string       // the outpost type echoProvider claims
	Listener       net.Listener // run closes it
	Logger         *slog.Logger // nil discards
}

// run serves the custom provider until ctx ends.
func run(ctx context.Context, cfg config) error {
	o, err := outpost.New(outpost.Config{CoreURL: cfg.CoreURL, Token: cfg.Token, Logger: cfg.Logger,
		Providers: map[string]outpost.Factory{
			cfg.Type: func(_ context.Context, d outpost.Deps) (outpost.Provider, error) {
				return newEchoProvider(cfg.Listener, d)
			},
		}})
	if err != nil {
		return err
	}
	return o.Run(ctx)
}
