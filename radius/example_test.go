package radius_test

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	layeh "layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
	"github.com/akoutpost/akoutpost/radius"
)

// A RADIUS outpost against a test core: a NAS sends alice's PAP
// Access-Request, signed with a Message-Authenticator.
func Example() {
	core, err := outposttest.NewServer([]byte(`version: 1
entries:
  - model: authentik_core.user
    identifiers: {username: alice}
    attrs: {password: alice-password}
  - model: authentik_providers_radius.radiusprovider
    id: wifi
    identifiers: {name: wifi}
    attrs: {shared_secret: s3cret, client_networks: 127.0.0.0/8}
  - model: authentik_core.application
    identifiers: {slug: wifi}
    attrs: {name: Wi-Fi, provider: !KeyOf wifi}
  - model: authentik_outposts.outpost
    identifiers: {name: radius}
    attrs: {type: radius, providers: [!KeyOf wifi]}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer core.Close()

	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	o, err := outpost.New(outpost.Config{CoreURL: core.URL(), Token: core.Token("radius"),
		Providers:  map[string]outpost.Factory{"radius": radius.Factory(radius.Config{RADIUSConn: conn})},
		Registerer: prometheus.NewRegistry(),
		Logger:     slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// The NAS: User-Name, User-Password, and a Message-Authenticator
	// (HMAC-MD5 of the packet with the attribute zeroed).
	req := layeh.New(layeh.CodeAccessRequest, []byte("s3cret"))
	_ = rfc2865.UserName_SetString(req, "alice")
	_ = rfc2865.UserPassword_SetString(req, "alice-password")
	req.Add(80, make([]byte, 16))
	raw, _ := req.Encode()
	mac := hmac.New(md5.New, []byte("s3cret"))
	mac.Write(raw)
	copy(raw[len(raw)-16:], mac.Sum(nil))

	nas, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nas.Close()
	buf := make([]byte, 4096)
	// Once the outpost serves its configuration, send; retransmit, as a
	// NAS does, should a datagram be lost.
	<-o.Ready()
	for range 5 {
		_, _ = nas.WriteTo(raw, conn.LocalAddr())
		_ = nas.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, _, err := nas.ReadFrom(buf)
		if err != nil {
			continue
		}
		reply, err := layeh.Parse(buf[:n], []byte("s3cret"))
		if err != nil || !layeh.IsAuthenticResponse(buf[:n], raw, []byte("s3cret")) {
			fmt.Println("a reply that does not authenticate")
			return
		}
		fmt.Println(reply.Code)
		return
	}
	fmt.Println("no reply")
	// Output: Access-Accept
}
