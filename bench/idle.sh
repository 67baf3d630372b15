#!/usr/bin/env bash
# Idle standalone outpost memory (issue 6: at most 25 MiB RSS).
#
# Builds akoutpost, starts `akoutpost testcore` (demo blueprint) and then, for
# the demo proxy outpost and the demo LDAP outpost in turn, `akoutpost run`
# against it. Once the outpost reports authentik_outpost_connection 1 on its
# metrics endpoint it idles IDLE_SECONDS, and VmRSS and VmHWM are read from
# /proc/PID/status. ROUNDS rounds alternate proxy and LDAP. There is no
# baseline process: the target is absolute, so the summary gives the ratio
# of the highest RSS seen to 25 MiB.
#
# The binary is built as the Dockerfile builds it (static, no cgo, stripped),
# since RSS depends on how much of the binary and of libc is mapped.
#
# Usage: bench/idle.sh            (from anywhere in the repository)
# Environment: ROUNDS (default 3), IDLE_SECONDS (default 10), AKOUTPOST_BIN
# (measure this binary instead of building one, e.g. to compare variants).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
IDLE_SECONDS=${IDLE_SECONDS:-10}
TARGET_KIB=$((25 * 1024))

root=$(cd "$(dirname "$0")/.." && pwd)
. "$(dirname "$0")/common.sh"

# kib NAME PID prints field NAME of /proc/PID/status in KiB.
kib() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$2/status"; }

if [ -n "${AKOUTPOST_BIN:-}" ]; then
	cp "$AKOUTPOST_BIN" "$work/akoutpost"
else
	echo "building akoutpost" >&2
	(cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/akoutpost" ./cmd/akoutpost)
fi

core_port=$(free_port)
"$work/akoutpost" testcore -listen "127.0.0.1:$core_port" >"$work/core.out" 2>"$work/core.log" &
pids+=($!)
for _ in $(seq 1 200); do
	grep -q '^listening ' "$work/core.out" 2>/dev/null && break
	sleep 0.1
done
core_url=$(awk '$1 == "listening" { print $2 }' "$work/core.out")
[ -n "$core_url" ] || { echo "test core did not start:" >&2; cat "$work/core.log" >&2; exit 1; }
token_of() { awk -v t="$1" '$1 == "outpost" && $4 == t { print $6; exit }' "$work/core.out"; }

# measure TYPE prints "VmRSS VmHWM" (KiB) of an idle outpost of TYPE.
measure() {
	local type=$1 token metrics pid state rss hwm connected=
	token=$(token_of "$type")
	[ -n "$token" ] || { echo "no $type outpost in the demo blueprint" >&2; return 1; }
	metrics=$(free_port)
	mkdir -p "$work/sessions"
	AUTHENTIK_HOST="$core_url" AUTHENTIK_TOKEN="$token" AUTHENTIK_LOG_LEVEL=warning \
		AUTHENTIK_LISTEN__HTTP="127.0.0.1:$(free_port)" AUTHENTIK_LISTEN__HTTPS="127.0.0.1:$(free_port)" \
		AUTHENTIK_LISTEN__LDAP="127.0.0.1:$(free_port)" AUTHENTIK_LISTEN__LDAPS="127.0.0.1:$(free_port)" \
		AUTHENTIK_LISTEN__METRICS="127.0.0.1:$metrics" AKOUTPOST_SESSION_STORE="file://$work/sessions" \
		"$work/akoutpost" run >"$work/$type.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	for _ in $(seq 1 300); do
		if curl -fsS "http://127.0.0.1:$metrics/metrics" 2>/dev/null |
			grep -Eq '^authentik_outpost_connection(\{[^}]*\})? 1$'; then
			connected=1
			break
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ -z "$connected" ]; then
		echo "$type outpost never connected:" >&2
		cat "$work/$type.log" >&2
		return 1
	fi
	sleep "$IDLE_SECONDS"
	state=$(awk '$1 == "State:" { print $2 }' "/proc/$pid/status")
	rss=$(kib VmRSS "$pid")
	hwm=$(kib VmHWM "$pid")
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	[ "$state" != Z ] || { echo "$type outpost exited" >&2; return 1; }
	echo "$rss $hwm"
}

max_rss=0
declare -A worst
for round in $(seq 1 "$ROUNDS"); do
	for type in proxy ldap; do
		read -r rss hwm < <(measure "$type")
		awk -v r="$round" -v t="$type" -v rss="$rss" -v hwm="$hwm" 'BEGIN {
			printf "round %d  %-5s  VmRSS %6d KiB (%5.1f MiB)  VmHWM %6d KiB (%5.1f MiB)\n", r, t, rss, rss / 1024, hwm, hwm / 1024
		}'
		((rss > max_rss)) && max_rss=$rss
		((rss > ${worst[$type]:-0})) && worst[$type]=$rss
	done
done

echo
echo "summary (target: VmRSS <= 25 MiB while idle)"
for type in proxy ldap; do
	awk -v t="$type" -v rss="${worst[$type]}" -v target="$TARGET_KIB" 'BEGIN {
		printf "  %-5s  highest VmRSS %5.1f MiB = %.2fx the target\n", t, rss / 1024, rss / target
	}'
done
if ((max_rss <= TARGET_KIB)); then echo "  met"; else echo "  NOT met"; fi
