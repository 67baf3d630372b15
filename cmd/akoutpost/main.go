// Command akoutpost runs an authentik outpost: a Proxy or LDAP provider
// configured by the authentik core it connects to.
//
//	akoutpost [run]                       run the outpost from the environment
//	akoutpost healthcheck                 exit 0 when the local outpost answers
//	akoutpost version                     print the version
//	akoutpost manifests kubernetes|compose print deployment manifests
//	akoutpost controller [status]         manage outposts' containers and Kubernetes objects
//	akoutpost testcore --blueprint FILE --listen ADDR
//	akoutpost demo                        a test core and every outpost in it
//
// The environment uses authentik's names: AUTHENTIK_HOST, AUTHENTIK_TOKEN
// (also file:// and env://), AUTHENTIK_INSECURE, AUTHENTIK_HOST_BROWSER and
// the AUTHENTIK_LISTEN__* addresses.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	code := command{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, usr1: usr1}.main(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
