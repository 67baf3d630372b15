#!/usr/bin/env bash
# bench/proxy.sh: an authenticated request through a proxy-mode provider of
# `akoutpost run` vs the baseline httputil.ReverseProxy (tuned idle pool,
# pooled buffers, no auth), both in front of the same small upstream, with
# wrk on loopback. Rounds alternate baseline and outpost so that drift on a
# shared machine hits both alike.
#
# Environment: ROUNDS (3), DURATION (10s), CONNS (64), THREADS (2),
# KEEP (set to keep the temp dir with the logs), PERF (a file: record the
# outpost's CPU profile with `perf record -g` during its last round; read it
# with `perf report -i FILE`), FLOOR (set: each round also measures the
# baseline sending the outpost's identity headers, fixed values of the same
# sizes, and X-Forwarded-*; a reference for what those headers alone cost,
# reported apart, never the verdict's baseline), H2 (set: each round also
# measures HTTP/2 over TLS: the outpost's HTTPS listener vs the baseline
# serving HTTPS with h2, both driven by `httpbench load` with H2_CONNS
# connections (8) and CONNS/H2_CONNS streams in flight on each; reported
# as a summary of its own).
# Target (issue 6): outpost >= 0.8x baseline req/s, p99 <= 1.5x.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}

cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
source bench/httpbench/lib.sh

go build -o "$work/akoutpost" ./cmd/akoutpost
go build -o "$work/httpbench" ./bench/httpbench

H2_CONNS=${H2_CONNS:-8}
h2_streams=$((CONNS / H2_CONNS > 0 ? CONNS / H2_CONNS : 1))

read -r p_up p_base p_core p_http p_https p_metrics p_floor p_base_tls < <("$work/httpbench" ports 8)
start upstream "$work/httpbench" upstream -listen "127.0.0.1:$p_up"
start baseline "$work/httpbench" revproxy -listen "127.0.0.1:$p_base" -upstream "http://127.0.0.1:$p_up"
if [ -n "${FLOOR:-}" ]; then
	start floor "$work/httpbench" revproxy -listen "127.0.0.1:$p_floor" -upstream "http://127.0.0.1:$p_up" -identity-headers
	wait_port "$p_floor"
fi
if [ -n "${H2:-}" ]; then
	start baseline-tls "$work/httpbench" revproxy -listen "127.0.0.1:$p_base_tls" -upstream "http://127.0.0.1:$p_up" -tls
	wait_port "$p_base_tls"
fi
start_core "127.0.0.1:$p_core" "http://127.0.0.1:$p_up"
start outpost env AUTHENTIK_HOST="$core_url" AUTHENTIK_TOKEN="$core_token" \
	AUTHENTIK_LISTEN__HTTP="127.0.0.1:$p_http" AUTHENTIK_LISTEN__HTTPS="127.0.0.1:$p_https" \
	AUTHENTIK_LISTEN__METRICS="127.0.0.1:$p_metrics" AKOUTPOST_SESSION_STORE=memory \
	"$work/akoutpost" run
outpost_pid=${pids[-1]}
wait_port "$p_up"
wait_port "$p_base"

cookie=$("$work/httpbench" login -connect "127.0.0.1:$p_http" -url http://app.bench/ -user bench -password bench-password)

for round in $(seq "$ROUNDS"); do
	measure baseline "$round" "127.0.0.1:$p_base" -H "Host: app.bench"
	if [ -n "${FLOOR:-}" ]; then
		results_file=$work/floor measure headers "$round" "127.0.0.1:$p_floor" -H "Host: app.bench"
	fi
	perf_round "$round"
	measure outpost "$round" "127.0.0.1:$p_http" -H "Host: app.bench" -H "Cookie: $cookie"
	if [ -n "${H2:-}" ]; then
		h2args=(-proto h2 -conns "$H2_CONNS" -streams "$h2_streams")
		results_file=$work/h2 measure_load h2-base "$round" "127.0.0.1:$p_base_tls" https://app.bench/ "${h2args[@]}"
		results_file=$work/h2 measure_load h2-outpost "$round" "127.0.0.1:$p_https" https://app.bench/ "${h2args[@]}" -cookie "$cookie"
	fi
done
perf_wait
summary "proxy mode vs httputil.ReverseProxy" 0.8 1.5
if [ -n "${H2:-}" ]; then
	results_file=$work/h2 baseline_side=h2-base summary "HTTP/2 over TLS: the outpost's HTTPS listener vs httputil.ReverseProxy serving h2 ($H2_CONNS connections x $h2_streams streams, httpbench load)" 0.8 1.5
fi
if [ -n "${FLOOR:-}" ]; then
	# Per round: the baseline with identity headers vs the baseline, and the
	# outpost vs the baseline with identity headers.
	paste -d' ' <(grep '^baseline ' "$work/results") "$work/floor" <(grep '^outpost ' "$work/results") | awk '
		{ h = h sprintf(" %.2f", $5 / $2); o = o sprintf(" %.2f", $8 / $5) }
		END { print "baseline + identity headers vs baseline, per round:" h; print "outpost vs baseline + identity headers, per round:  " o }'
fi
