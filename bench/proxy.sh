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
# as a summary of its own), STORE (the session stores to measure, one
# outpost process each, side by side in every round: "default" is what a
# user who sets nothing gets, the file store under TMPDIR; "memory" and any
# other AKOUTPOST_SESSION_STORE value are passed as they are; default
# "default memory"; PERF and H2 use the first).
# Targets: outpost >= 0.8x baseline req/s, p99 <= 1.5x (issue 6); the
# first store >= 0.95x the others' req/s (issue 13).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
read -r -a stores <<<"${STORE:-default memory}"

cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
source bench/httpbench/lib.sh

go build -o "$work/akoutpost" ./cmd/akoutpost
go build -o "$work/httpbench" ./bench/httpbench

H2_CONNS=${H2_CONNS:-8}
h2_streams=$((CONNS / H2_CONNS > 0 ? CONNS / H2_CONNS : 1))

read -r -a ports < <("$work/httpbench" ports $((5 + 3 * ${#stores[@]})))
p_up=${ports[0]} p_base=${ports[1]} p_core=${ports[2]} p_floor=${ports[3]} p_base_tls=${ports[4]}
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
# One outpost process per store, each with its own listeners and TMPDIR.
p_http=() p_https=() cookies=()
for i in "${!stores[@]}"; do
	p_http[i]=${ports[5 + 3 * i]} p_https[i]=${ports[6 + 3 * i]}
	mkdir -p "$work/tmp-$i"
	storeenv=()
	if [ "${stores[i]}" != default ]; then storeenv=(AKOUTPOST_SESSION_STORE="${stores[i]}"); fi
	start "outpost-$i" env -u AKOUTPOST_SESSION_STORE TMPDIR="$work/tmp-$i" \
		AUTHENTIK_HOST="$core_url" AUTHENTIK_TOKEN="$core_token" \
		AUTHENTIK_LISTEN__HTTP="127.0.0.1:${p_http[i]}" AUTHENTIK_LISTEN__HTTPS="127.0.0.1:${p_https[i]}" \
		AUTHENTIK_LISTEN__METRICS="127.0.0.1:${ports[7 + 3 * i]}" "${storeenv[@]}" \
		"$work/akoutpost" run
	if [ "$i" = 0 ]; then outpost_pid=${pids[-1]}; fi
done
wait_port "$p_up"
wait_port "$p_base"
for i in "${!stores[@]}"; do
	cookies[i]=$("$work/httpbench" login -connect "127.0.0.1:${p_http[i]}" -url http://app.bench/ -user bench -password bench-password)
done
cookie=${cookies[0]}

for round in $(seq "$ROUNDS"); do
	measure baseline "$round" "127.0.0.1:$p_base" -H "Host: app.bench"
	if [ -n "${FLOOR:-}" ]; then
		results_file=$work/floor measure headers "$round" "127.0.0.1:$p_floor" -H "Host: app.bench"
	fi
	# Stores in turn, the order reversed every other round, each paired
	# with this round's baseline in a results file of its own.
	order=("${!stores[@]}")
	if [ $((round % 2)) = 0 ]; then order=($(printf '%s\n' "${order[@]}" | tac)); fi
	for i in "${order[@]}"; do
		tail -n 1 "$work/results" >>"$work/results-$i"
		if [ "$i" = 0 ]; then perf_round "$round"; fi
		results_file=$work/results-$i measure "${stores[i]:0:9}" "$round" "127.0.0.1:${p_http[i]}" \
			-H "Host: app.bench" -H "Cookie: ${cookies[i]}"
		if [ "$i" = 0 ]; then perf_wait; fi
	done
	if [ -n "${H2:-}" ]; then
		h2args=(-proto h2 -conns "$H2_CONNS" -streams "$h2_streams")
		results_file=$work/h2 measure_load h2-base "$round" "127.0.0.1:$p_base_tls" https://app.bench/ "${h2args[@]}"
		results_file=$work/h2 measure_load h2-outpost "$round" "127.0.0.1:${p_https[0]}" https://app.bench/ "${h2args[@]}" -cookie "$cookie"
	fi
done
for i in "${!stores[@]}"; do
	results_file=$work/results-$i summary "proxy mode, session store ${stores[i]}, vs httputil.ReverseProxy" 0.8 1.5
done
# The first store against each other, round by round (the same round's
# measurements, so drift cancels).
for j in "${!stores[@]}"; do
	[ "$j" = 0 ] && continue
	paste -d' ' <(grep -v '^baseline ' "$work/results-0") <(grep -v '^baseline ' "$work/results-$j") | awk \
		-v title="session store ${stores[0]} vs ${stores[j]}" '
		function median(a, n,   i, k, t) {
			for (i = 2; i <= n; i++) for (k = i; k > 1 && a[k-1] > a[k]; k--) { t = a[k]; a[k] = a[k-1]; a[k-1] = t }
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		{ n++; r[n] = $2 / $5; p[n] = $3 / $6 }
		END {
			printf "\n%s (%d rounds)\nper-round ratios req/s:", title, n
			for (i = 1; i <= n; i++) printf " %.3f", r[i]
			m = median(r, n)
			printf "\nratio (median of rounds) %.3fx req/s, %.3fx p99 (target >= 0.95 req/s)  %s\n", m, median(p, n), (m >= 0.95 ? "MET" : "MISSED")
		}'
done
if [ -n "${H2:-}" ]; then
	results_file=$work/h2 baseline_side=h2-base summary "HTTP/2 over TLS: the outpost's HTTPS listener vs httputil.ReverseProxy serving h2 ($H2_CONNS connections x $h2_streams streams, httpbench load)" 0.8 1.5
fi
if [ -n "${FLOOR:-}" ]; then
	# Per round: the baseline with identity headers vs the baseline, and the
	# outpost vs the baseline with identity headers.
	paste -d' ' <(grep '^baseline ' "$work/results") "$work/floor" <(grep -v '^baseline ' "$work/results-0") | awk '
		{ h = h sprintf(" %.2f", $5 / $2); o = o sprintf(" %.2f", $8 / $5) }
		END { print "baseline + identity headers vs baseline, per round:" h; print "outpost vs baseline + identity headers, per round:  " o }'
fi
