#!/usr/bin/env bash
# bench/ldapmem.sh: the "cached directory" row of issue 6: how long a fresh
# LDAP outpost takes to load a directory of 100,000 users and 10,000 groups
# from the test core, and how much memory it keeps.
#
#   bench/ldapmem.sh                               # 100,000 users, 10,000 groups, 3 rounds
#   DIR_USERS=10000 DIR_GROUPS=1000 ROUNDS=1 bench/ldapmem.sh   # a short smoke run
#
# The population is bench/genblueprint's (user0..userN-1, each in MEMBERS
# groups), served by `akoutpost testcore`, which is started once. Each round
# starts a fresh `akoutpost run` (cached search and bind mode) and measures:
#   load   from starting the process until an ldapsearch, bound as the
#          service account, for the last user (cn=user<N-1>) answers with
#          its entry; the search is retried every POLL seconds;
#   peak   the outpost's VmHWM (peak resident set) once it answered and
#          SETTLE seconds later;
#   steady its VmRSS SETTLE seconds after answering.
# Target: load <= 10 s, RSS <= 300 MiB. There is no runnable baseline: the
# reference figure is authentik's own outpost, reported to need 8 GiB for
# 13,000 users, which cannot run here; the summary gives each figure as a
# fraction of the target instead. The test core's own start (parsing the
# blueprint) is printed too, but is not part of the row.
#
# REFRESH=SECONDS (at least 30, authentik's minimum) also measures a
# refresh, which lists the whole directory again while the last snapshot
# still serves: each round resets the outpost's peak (VmHWM, through
# /proc/PID/clear_refs) once the steady RSS is read, waits until REFRESH +
# REFRESH_SETTLE (20) seconds after the start, and reports the peak over
# the refresh, its ratio to the steady RSS (target <= TARGET_REFRESH, 1.25)
# and the RSS after it, with the CPU the outpost spent meanwhile (which
# shows that a refresh ran). In these runs the service account's bind changes
# its JSON (last_login), so the refresh has something to rebuild.
#
# Each round also reports the CPU time (user + system) the test core and
# the outpost spent during the load, and the test core's RSS: the test core
# serves the directory page by page as authentik does (users 500 to a
# page, groups 100), and its share says whether it, not the outpost, bounds
# the load.
#
# OUTPOST_GOGC and OUTPOST_GOMEMLIMIT, when set, are given to the outpost
# only (as GOGC and GOMEMLIMIT), to see how much of the peak is the
# garbage collector's headroom rather than live data.
set -euo pipefail

DIR_USERS=${DIR_USERS:-100000}
DIR_GROUPS=${DIR_GROUPS:-10000}
MEMBERS=${MEMBERS:-1}
ROUNDS=${ROUNDS:-3}
SETTLE=${SETTLE:-3}
POLL=${POLL:-0.1}
TIMEOUT=${TIMEOUT:-120}
TARGET_LOAD=${TARGET_LOAD:-10}
TARGET_RSS_MIB=${TARGET_RSS_MIB:-300}
TARGET_REFRESH=${TARGET_REFRESH:-1.25}
REFRESH=${REFRESH:-0}
REFRESH_SETTLE=${REFRESH_SETTLE:-20}

for tool in go ldapsearch; do
	if ! command -v "$tool" >/dev/null; then
		echo "bench/ldapmem.sh: $tool not found (Debian: apt-get install ldap-utils)" >&2
		exit 1
	fi
done

repo=$(cd "$(dirname "$0")/.." && pwd)
. "$(dirname "$0")/common.sh"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# cpu PID: user + system CPU seconds of a process so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"; }

log "building akoutpost and genblueprint into $work"
(cd "$repo" && go build -o "$work/akoutpost" ./cmd/akoutpost && go build -o "$work/genblueprint" ./bench/genblueprint)

log "generating $DIR_USERS users, $DIR_GROUPS groups, $MEMBERS group(s) per user"
"$work/genblueprint" -users "$DIR_USERS" -groups "$DIR_GROUPS" -members "$MEMBERS" -refresh "$REFRESH" \
	-blueprint "$work/bp.yaml"

base=dc=ldap,dc=goauthentik,dc=io
binddn=cn=ldapservice,ou=users,$base
bindpw=servicepass
last=user$((DIR_USERS - 1))

p_core=$(free_port)
t0=$(now)
"$work/akoutpost" testcore --blueprint "$work/bp.yaml" --listen "127.0.0.1:$p_core" >"$work/core.out" 2>"$work/core.log" &
core_pid=$!
pids+=("$core_pid")
until grep -q '^listening ' "$work/core.out" 2>/dev/null; do
	if ! kill -0 "$core_pid" 2>/dev/null; then
		echo "bench/ldapmem.sh: the test core exited:" >&2
		cat "$work/core.log" >&2
		exit 1
	fi
	sleep 0.2
done
core_load=$(secs "$t0" "$(now)")
token=$(awk '$1 == "outpost" && $2 == "ldap-bench" { print $6 }' "$work/core.out")
log "test core ready in ${core_load}s (RSS $(mib "$(status_kib "$core_pid" VmRSS)") MiB)"

loads=()
peaks=()
steadies=()
rpeaks=()
rsteadies=()
rratios=()
coreshares=()
for round in $(seq "$ROUNDS"); do
	p_ldap=$(free_port) p_ldaps=$(free_port) p_http=$(free_port) p_https=$(free_port) p_metrics=$(free_port)
	gcenv=()
	if [ -n "${OUTPOST_GOGC:-}" ]; then gcenv+=("GOGC=$OUTPOST_GOGC"); fi
	if [ -n "${OUTPOST_GOMEMLIMIT:-}" ]; then gcenv+=("GOMEMLIMIT=$OUTPOST_GOMEMLIMIT"); fi
	t0=$(now)
	core_cpu0=$(cpu "$core_pid")
	env "${gcenv[@]}" AUTHENTIK_HOST="http://127.0.0.1:$p_core" AUTHENTIK_TOKEN="$token" AUTHENTIK_LOG_LEVEL=warning \
		AUTHENTIK_LISTEN__LDAP="127.0.0.1:$p_ldap" AUTHENTIK_LISTEN__LDAPS="127.0.0.1:$p_ldaps" \
		AUTHENTIK_LISTEN__HTTP="127.0.0.1:$p_http" AUTHENTIK_LISTEN__HTTPS="127.0.0.1:$p_https" \
		AUTHENTIK_LISTEN__METRICS="127.0.0.1:$p_metrics" \
		"$work/akoutpost" run >"$work/outpost.log" 2>&1 &
	op=$!
	pids+=("$op")
	until ldapsearch -x -LLL -H "ldap://127.0.0.1:$p_ldap" -D "$binddn" -w "$bindpw" \
		-b "ou=users,$base" "(cn=$last)" dn 2>/dev/null | grep -q "^dn: cn=$last,"; do
		if ! kill -0 "$op" 2>/dev/null; then
			echo "bench/ldapmem.sh: the outpost exited:" >&2
			cat "$work/outpost.log" >&2
			exit 1
		fi
		if [ "$(secs "$t0" "$(now)" | cut -d. -f1)" -ge "$TIMEOUT" ]; then
			echo "bench/ldapmem.sh: no answer for $last after ${TIMEOUT}s" >&2
			tail -20 "$work/outpost.log" >&2
			exit 1
		fi
		sleep "$POLL"
	done
	load=$(secs "$t0" "$(now)")
	core_cpu=$(awk -v a="$core_cpu0" -v b="$(cpu "$core_pid")" 'BEGIN { printf "%.2f", b - a }')
	op_cpu=$(cpu "$op")
	coreshare=$(awk -v c="$core_cpu" -v o="$op_cpu" 'BEGIN { printf "%.2f", (c + o > 0 ? c / (c + o) : 0) }')
	coreshares+=("$coreshare")
	sleep "$SETTLE"
	peak=$(mib "$(status_kib "$op" VmHWM)")
	steady=$(mib "$(status_kib "$op" VmRSS)")
	refreshed=""
	if [ "$REFRESH" -gt 0 ]; then
		# From here VmHWM is the refresh's own peak, not the load's.
		echo 5 >"/proc/$op/clear_refs"
		rcpu0=$(cpu "$op")
		wait_s=$(awk -v t0="$t0" -v now="$(now)" -v r="$REFRESH" -v s="$REFRESH_SETTLE" \
			'BEGIN { w = t0 + r + s - now; if (w < 0) w = 0; printf "%.1f", w }')
		sleep "$wait_s"
		rpeak=$(mib "$(status_kib "$op" VmHWM)")
		rsteady=$(mib "$(status_kib "$op" VmRSS)")
		rcpu=$(awk -v a="$rcpu0" -v b="$(cpu "$op")" 'BEGIN { printf "%.2f", b - a }')
		rratio=$(awk -v p="$rpeak" -v s="$steady" 'BEGIN { printf "%.3f", p / s }')
		rpeaks+=("$rpeak")
		rsteadies+=("$rsteady")
		rratios+=("$rratio")
		refreshed="; over its first refresh: peak RSS ${rpeak} MiB (${rratio}x steady), after it ${rsteady} MiB, outpost CPU over it ${rcpu}s"
		if awk -v c="$rcpu" 'BEGIN { exit !(c < 0.5) }'; then
			refreshed="$refreshed (NO REFRESH RAN in the window: raise REFRESH_SETTLE)"
		fi
	fi
	kill "$op"
	wait "$op" 2>/dev/null || true
	loads+=("$load")
	peaks+=("$peak")
	steadies+=("$steady")
	echo "round $round: loaded in ${load}s, peak RSS ${peak} MiB, steady RSS ${steady} MiB$refreshed"
	echo "  CPU during the load: test core ${core_cpu}s, outpost ${op_cpu}s (test core share ${coreshare});" \
		"test core RSS $(mib "$(status_kib "$core_pid" VmRSS)") MiB, peak $(mib "$(status_kib "$core_pid" VmHWM)") MiB"
done

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
load=$(median "${loads[@]}")
peak=$(median "${peaks[@]}")
steady=$(median "${steadies[@]}")
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { printf "%.2fx of target, %s", v / t, (v <= t ? "met" : "MISSED") }'; }
echo
echo "summary: $DIR_USERS users, $DIR_GROUPS groups, median of $ROUNDS round(s); test core start ${core_load}s${OUTPOST_GOGC:+; GOGC=$OUTPOST_GOGC}${OUTPOST_GOMEMLIMIT:+; GOMEMLIMIT=$OUTPOST_GOMEMLIMIT}"
echo "  load        ${load}s     (target <= ${TARGET_LOAD}s: $(verdict "$load" "$TARGET_LOAD"))"
echo "  peak RSS    ${peak} MiB  (target <= ${TARGET_RSS_MIB} MiB: $(verdict "$peak" "$TARGET_RSS_MIB"))"
echo "  steady RSS  ${steady} MiB  (target <= ${TARGET_RSS_MIB} MiB: $(verdict "$steady" "$TARGET_RSS_MIB"))"
echo "  test core's share of the CPU during the load: $(median "${coreshares[@]}")"
if [ "$REFRESH" -gt 0 ]; then
	rratio=$(median "${rratios[@]}")
	echo "  refresh peak $(median "${rpeaks[@]}") MiB = ${rratio}x steady (target <= ${TARGET_REFRESH}x: $(verdict "$rratio" "$TARGET_REFRESH")), after it $(median "${rsteadies[@]}") MiB"
fi
