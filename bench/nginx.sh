#!/usr/bin/env bash
# bench/nginx.sh: nginx auth_request to the outpost's
# /outpost.goauthentik.io/auth/nginx (forward_single provider, valid session
# cookie) and then to a small upstream, vs the same nginx configuration
# whose auth_request goes to a Go handler that answers 200 at once. One
# nginx serves both variants on two ports; both use keepalive upstream pools
# so the baseline is as fast as nginx allows. Rounds alternate.
#
# Environment: ROUNDS (3), DURATION (10s), CONNS (64), THREADS (2),
# NGINX_WORKERS (auto), KEEP (set to keep the temp dir with the logs), PERF
# (a file: record the outpost's CPU profile with `perf record -g` during its
# last round; read it with `perf report -i FILE`).
# Target (issue 6): outpost >= 0.8x baseline req/s.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
NGINX_WORKERS=${NGINX_WORKERS:-auto}

cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || { echo "nginx is not installed (apt-get install nginx)" >&2; exit 1; }
source bench/httpbench/lib.sh

go build -o "$work/akoutpost" ./cmd/akoutpost
go build -o "$work/httpbench" ./bench/httpbench

read -r p_up p_ok p_core p_http p_https p_metrics p_nx_out p_nx_base < <("$work/httpbench" ports 8)
start upstream "$work/httpbench" upstream -listen "127.0.0.1:$p_up"
start ok "$work/httpbench" ok -listen "127.0.0.1:$p_ok"
start_core "127.0.0.1:$p_core" "http://127.0.0.1:$p_up"
start outpost env AUTHENTIK_HOST="$core_url" AUTHENTIK_TOKEN="$core_token" \
	AUTHENTIK_LISTEN__HTTP="127.0.0.1:$p_http" AUTHENTIK_LISTEN__HTTPS="127.0.0.1:$p_https" \
	AUTHENTIK_LISTEN__METRICS="127.0.0.1:$p_metrics" AKOUTPOST_SESSION_STORE=memory \
	"$work/akoutpost" run
outpost_pid=${pids[-1]}

# server PORT AUTH-UPSTREAM: docs/proxy-nginx.md's server block, with
# keepalive pools (HTTP/1.1, no Connection header) towards the application
# and the auth endpoint.
server() {
	cat <<EOF
    server {
        listen 127.0.0.1:$1;
        server_name fwd.bench;

        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;

            auth_request     /outpost.goauthentik.io/auth/nginx;
            error_page       401 = @goauthentik_proxy_signin;
            auth_request_set \$auth_cookie \$upstream_http_set_cookie;
            add_header       Set-Cookie \$auth_cookie;

            auth_request_set \$authentik_username \$upstream_http_x_authentik_username;
            auth_request_set \$authentik_groups \$upstream_http_x_authentik_groups;
            auth_request_set \$authentik_entitlements \$upstream_http_x_authentik_entitlements;
            auth_request_set \$authentik_email \$upstream_http_x_authentik_email;
            auth_request_set \$authentik_name \$upstream_http_x_authentik_name;
            auth_request_set \$authentik_uid \$upstream_http_x_authentik_uid;

            proxy_set_header X-authentik-username \$authentik_username;
            proxy_set_header X-authentik-groups \$authentik_groups;
            proxy_set_header X-authentik-entitlements \$authentik_entitlements;
            proxy_set_header X-authentik-email \$authentik_email;
            proxy_set_header X-authentik-name \$authentik_name;
            proxy_set_header X-authentik-uid \$authentik_uid;
        }

        location /outpost.goauthentik.io {
            proxy_pass              http://$2/outpost.goauthentik.io;
            proxy_http_version      1.1;
            proxy_set_header        Connection "";
            proxy_set_header        Host \$host;
            proxy_set_header        X-Original-URL \$scheme://\$http_host\$request_uri;
            add_header              Set-Cookie \$auth_cookie;
            auth_request_set        \$auth_cookie \$upstream_http_set_cookie;
            proxy_pass_request_body off;
            proxy_set_header        Content-Length "";
        }

        location @goauthentik_proxy_signin {
            internal;
            add_header Set-Cookie \$auth_cookie;
            return 302 /outpost.goauthentik.io/start?rd=\$scheme://\$http_host\$request_uri;
        }
    }
EOF
}

user=""
if [ "$(id -u)" = 0 ]; then user="user root root;"; fi
cat >"$work/nginx.conf" <<EOF
$user
worker_processes $NGINX_WORKERS;
daemon off;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    fastcgi_temp_path $work/fastcgi;
    uwsgi_temp_path $work/uwsgi;
    scgi_temp_path $work/scgi;
    proxy_buffers 8 16k;
    proxy_buffer_size 32k;
    # nginx listens on a random port, fwd.bench has none: a relative login
    # redirect keeps the host the client asked for.
    absolute_redirect off;

    upstream app { server 127.0.0.1:$p_up; keepalive 256; }
    upstream outpost { server 127.0.0.1:$p_http; keepalive 256; }
    upstream instant { server 127.0.0.1:$p_ok; keepalive 256; }
$(server "$p_nx_out" outpost)
$(server "$p_nx_base" instant)
}
EOF
start nginx "$nginx" -c "$work/nginx.conf" -p "$work" -e "$work/error.log"
wait_port "$p_up"
wait_port "$p_ok"
wait_port "$p_nx_out"
wait_port "$p_nx_base"

# The login goes through nginx, as a browser's would.
cookie=$("$work/httpbench" login -connect "127.0.0.1:$p_nx_out" -url http://fwd.bench/ -user bench -password bench-password)

# Both variants get the cookie, so nginx does the same work for each.
for round in $(seq "$ROUNDS"); do
	measure baseline "$round" "127.0.0.1:$p_nx_base" -H "Host: fwd.bench" -H "Cookie: $cookie"
	perf_round "$round"
	measure outpost "$round" "127.0.0.1:$p_nx_out" -H "Host: fwd.bench" -H "Cookie: $cookie"
done
perf_wait
summary "nginx auth_request: outpost vs 200-at-once handler" 0.8
