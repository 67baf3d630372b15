#!/usr/bin/env bash
# bench/radius.sh: PAP Access-Requests per second through the RADIUS
# outpost, side by side with FreeRADIUS authenticating the same users
# (issue 14).
#
#   bench/radius.sh                          # 3 rounds of 10 s each
#   ROUNDS=1 DURATION=3s bench/radius.sh     # a short smoke run
#   PERF=radius.perf bench/radius.sh         # also profile the last round
#
# Both servers hold the users bench/genblueprint writes (user0..userN-1,
# password "benchpass") and share one secret:
#
# - the outpost: `akoutpost testcore --blueprint` serving a RADIUS provider
#   (the default authentication flow, client networks 127.0.0.0/8), its
#   application and a radius outpost, and `akoutpost run` with that
#   outpost's token. Every request runs the flow (identification with the
#   password, the password stage) and the access check against the test
#   core, as against authentik.
# - FreeRADIUS (Debian's freeradius), in the foreground (-f) with a private
#   configuration written here: radiusd.conf with the pap module and a
#   files module whose users file gives each user a Cleartext-Password;
#   clients.conf with one client, 127.0.0.1, that must send
#   Message-Authenticator; and, in post-auth, a Message-Authenticator on
#   every reply (FreeRADIUS 3.2.1 sends none unless told to). Debug and
#   authentication logging are off.
#
# bench/radiusload sends the requests: CLIENTS workers, one request in
# flight each, User-Name, User-Password, NAS-Identifier and
# Message-Authenticator, every reply's Response Authenticator and
# Message-Authenticator checked. Rounds alternate the two servers (the
# order flips every round); the verdict is the median of the per-round
# ratios outpost/FreeRADIUS.
#
# Before the rounds, a count pass runs COUNT authentications through a
# second outpost whose core sits behind `radiusload count-core`, a
# counting reverse proxy, and prints the core requests per authentication
# by path. During every round the CPU time of the outpost, the test core
# and FreeRADIUS is read from /proc, so the summary says how the CPU of
# one authentication splits between the outpost and the core.
#
# Settings: ROUNDS (3), DURATION (10s), USERS (10000), CLIENTS (16),
# COUNT (2000), WARMUP (2s, per server, before the rounds), SECRET,
# FR_THREADS (FreeRADIUS's max_servers, 32), FREERADIUS (its binary;
# found on PATH or in /usr/sbin), FR_LIB and FR_DICT (its modules and
# dictionaries: /usr/lib/freeradius, /usr/share/freeradius), PERF (a file name: record
# `perf record -g` of the outpost and of the test core during the last
# outpost round into PERF.outpost and PERF.core, and print where their time
# goes), POOL (a list of idle pool sizes, e.g. "0 256": each value runs
# one more outpost, bench/radiusembed, embedded with an HTTP client for the
# core that keeps that many idle connections per host (0: the outpost's
# default client, as `akoutpost run` has), measured in every round next to
# the command's outpost and reported as a ratio to it), AKOUTPOST_BIN (an
# akoutpost binary to use instead of building ./cmd/akoutpost), KEEP (set:
# keep the work directory with the logs).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
USERS=${USERS:-10000}
CLIENTS=${CLIENTS:-16}
COUNT=${COUNT:-2000}
WARMUP=${WARMUP:-2s}
SECRET=${SECRET:-bench-radius-secret}
FR_THREADS=${FR_THREADS:-32}
USERPW=benchpass

if [ -z "${FREERADIUS:-}" ]; then
	FREERADIUS=$(command -v freeradius || command -v radiusd || true)
	if [ -z "$FREERADIUS" ] && [ -x /usr/sbin/freeradius ]; then FREERADIUS=/usr/sbin/freeradius; fi
fi
if [ -z "$FREERADIUS" ] || ! [ -x "$FREERADIUS" ]; then
	echo "bench/radius.sh: the FreeRADIUS server (freeradius${FREERADIUS:+ at $FREERADIUS}) is not installed; it is the baseline." >&2
	echo "  Debian: apt-get install --no-install-recommends freeradius (.ci/run lists it), or set FREERADIUS to its binary" >&2
	exit 1
fi
if ! command -v go >/dev/null; then
	echo "bench/radius.sh: go not found" >&2
	exit 1
fi
if [ -n "${PERF:-}" ] && ! command -v perf >/dev/null; then
	echo "bench/radius.sh: PERF is set but perf is not installed (Debian: linux-perf)" >&2
	exit 1
fi
FR_LIB=${FR_LIB:-/usr/lib/freeradius}
FR_DICT=${FR_DICT:-/usr/share/freeradius}
if ! [ -e "$FR_LIB/rlm_pap.so" ] || ! [ -e "$FR_DICT/dictionary" ]; then
	echo "bench/radius.sh: FreeRADIUS modules ($FR_LIB/rlm_pap.so) or dictionaries ($FR_DICT) not found; set FR_LIB and FR_DICT" >&2
	exit 1
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
. "$(dirname "$0")/common.sh"
if [ -n "${KEEP:-}" ]; then
	trap 'kept=$work; work=; cleanup; echo "kept $kept" >&2' EXIT
fi

log "building into $work"
if [ -n "${AKOUTPOST_BIN:-}" ]; then
	cp "$AKOUTPOST_BIN" "$work/akoutpost"
else
	(cd "$repo" && go build -o "$work/akoutpost" ./cmd/akoutpost)
fi
(cd "$repo" && go build -o "$work/genblueprint" ./bench/genblueprint &&
	go build -o "$work/radiusload" ./bench/radiusload)
read -r -a pools <<<"${POOL:-}"
if [ ${#pools[@]} -gt 0 ]; then
	(cd "$repo" && go build -o "$work/radiusembed" ./bench/radiusembed)
fi

# free_udp_port prints a loopback UDP port nothing is bound to, below the
# kernel's ephemeral range so that no client socket takes it meanwhile.
free_udp_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 12000))
		if ! awk -v p="$(printf ':%04X$' "$p")" '$2 ~ p {f = 1} END {exit !f}' /proc/net/udp /proc/net/udp6 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	echo "no free loopback UDP port found" >&2
	return 1
}

# cpu_ticks PID: user plus system CPU time of the process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# machine_ticks: idle and total CPU time of the machine, in clock ticks.
machine_ticks() { awk '$1 == "cpu" {print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }
HZ=$(getconf CLK_TCK)

# wait_radius NAME ADDR LOG PID: until one Access-Request is accepted;
# fails at once if the server (PID) exited.
wait_radius() {
	local name=$1 addr=$2 logf=$3 pid=$4 err=""
	for _ in $(seq 1 300); do
		if err=$("$work/radiusload" -addr "$addr" -secret "$SECRET" -users 1 -password "$USERPW" \
			-n 1 -c 1 -timeout 1s 2>&1); then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			local status=0
			wait "$pid" 2>/dev/null || status=$?
			echo "bench/radius.sh: $name exited (status $status):" >&2
			tail -20 "$logf" >&2
			exit 1
		fi
		sleep 0.2
	done
	echo "bench/radius.sh: $name on $addr never accepted user0; last try: $err" >&2
	tail -20 "$logf" >&2
	exit 1
}

# start_freeradius DIR: writes the configuration and runs FreeRADIUS in the
# foreground. Sets FR_ADDR and FR_PID.
start_freeradius() {
	local dir=$1 port
	port=$(free_udp_port)
	mkdir -p "$dir"
	cp "$work/users" "$dir/users"
	cat >"$dir/clients.conf" <<EOF
client bench {
	ipaddr = 127.0.0.1
	secret = $SECRET
	require_message_authenticator = yes
}
EOF
	cat >"$dir/radiusd.conf" <<EOF
# FreeRADIUS for bench/radius.sh: PAP against a users file, nothing else.
prefix = /usr
libdir = $FR_LIB
confdir = $dir
raddbdir = $dir
logdir = $dir
run_dir = $dir
pidfile = $dir/radiusd.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 65536
hostname_lookups = no
log {
	destination = files
	file = $dir/radius.log
	auth = no
}
security {
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = no
}
thread pool {
	start_servers = 5
	max_servers = $FR_THREADS
	min_spare_servers = 3
	max_spare_servers = 10
	max_requests_per_server = 0
}
\$INCLUDE clients.conf
modules {
	pap {
	}
	files {
		filename = $dir/users
	}
}
server bench {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = $port
	}
	authorize {
		files
		pap
	}
	authenticate {
		Auth-Type PAP {
			pap
		}
	}
	post-auth {
		update reply {
			Message-Authenticator := 0x00
		}
		Post-Auth-Type REJECT {
			update reply {
				Message-Authenticator := 0x00
			}
		}
	}
}
EOF
	if ! "$FREERADIUS" -C -d "$dir" -n radiusd -D "$FR_DICT" >"$dir/check.log" 2>&1; then
		echo "bench/radius.sh: FreeRADIUS refuses the configuration it was given:" >&2
		tail -20 "$dir/check.log" "$dir/radius.log" 2>/dev/null >&2
		exit 1
	fi
	"$FREERADIUS" -f -d "$dir" -n radiusd -D "$FR_DICT" >"$dir/stdout.log" 2>&1 &
	pids+=($!)
	FR_PID=$!
	FR_ADDR=127.0.0.1:$port
	wait_radius FreeRADIUS "$FR_ADDR" "$dir/radius.log" "$FR_PID"
}

# start_core DIR: the test core serving the blueprint. Sets CORE_URL,
# CORE_PID and TOKEN.
start_core() {
	local dir=$1
	mkdir -p "$dir"
	"$work/akoutpost" testcore --blueprint "$work/bp.yaml" --listen 127.0.0.1:0 >"$dir/core.out" 2>"$dir/core.log" &
	pids+=($!)
	CORE_PID=$!
	for _ in $(seq 1 600); do
		grep -q '^listening ' "$dir/core.out" 2>/dev/null && break
		kill -0 "$CORE_PID" 2>/dev/null || break
		sleep 0.1
	done
	CORE_URL=$(awk '/^listening /{print $2}' "$dir/core.out")
	TOKEN=$(awk '/^outpost radius-bench /{print $6}' "$dir/core.out")
	if [ -z "$CORE_URL" ] || [ -z "$TOKEN" ]; then
		echo "bench/radius.sh: the test core did not start:" >&2
		tail -20 "$dir/core.log" >&2
		exit 1
	fi
}

# start_outpost DIR URL: `akoutpost run` for the radius outpost against the
# core at URL. Sets OUR_ADDR and OUR_PID.
start_outpost() {
	local dir=$1 url=$2 port
	mkdir -p "$dir"
	port=$(free_udp_port)
	AUTHENTIK_HOST=$url AUTHENTIK_TOKEN=$TOKEN AUTHENTIK_LOG_LEVEL=warning \
		AUTHENTIK_LISTEN__RADIUS=127.0.0.1:$port AUTHENTIK_LISTEN__METRICS=127.0.0.1:0 \
		"$work/akoutpost" run >"$dir/outpost.out" 2>"$dir/outpost.log" &
	pids+=($!)
	OUR_PID=$!
	OUR_ADDR=127.0.0.1:$port
	wait_radius "the outpost" "$OUR_ADDR" "$dir/outpost.log" "$OUR_PID"
}

# start_embedded DIR IDLE: bench/radiusembed against the core, keeping
# IDLE idle connections to it. Sets OUR_ADDR and OUR_PID.
start_embedded() {
	local dir=$1 idle=$2 port
	mkdir -p "$dir"
	port=$(free_udp_port)
	"$work/radiusembed" -core "$CORE_URL" -token "$TOKEN" -listen "127.0.0.1:$port" -idle "$idle" >"$dir/outpost.log" 2>&1 &
	pids+=($!)
	OUR_PID=$!
	OUR_ADDR=127.0.0.1:$port
	wait_radius "the embedded outpost (idle pool $idle)" "$OUR_ADDR" "$dir/outpost.log" "$OUR_PID"
}

# stop PID: ends one process this script started.
stop() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

log "generating $USERS users (blueprint and FreeRADIUS users file)"
"$work/genblueprint" -provider radius -users "$USERS" -groups 1 -members 0 -radius-secret "$SECRET" \
	-password "$USERPW" -blueprint "$work/bp.yaml" -freeradius-users "$work/users"

log "starting FreeRADIUS ($("$FREERADIUS" -v 2>/dev/null | sed -n '1s/.*Version \([^,]*\),.*/\1/p'))"
start_freeradius "$work/freeradius"
log "starting the test core and the outpost"
start_core "$work/core"
start_outpost "$work/outpost" "$CORE_URL"
OUTPOST_ADDR=$OUR_ADDR OUTPOST_PID=$OUR_PID
pool_addr=() pool_pid=()
for i in "${!pools[@]}"; do
	log "starting an embedded outpost with an idle pool of ${pools[$i]} (0: the default client)"
	start_embedded "$work/embedded$i" "${pools[$i]}"
	pool_addr+=("$OUR_ADDR") pool_pid+=("$OUR_PID")
done

if command -v radclient >/dev/null; then
	log "radclient sanity check (Access-Accept from both, Access-Reject for a wrong password)"
	for addr in "$FR_ADDR" "$OUTPOST_ADDR"; do
		for pw in "$USERPW" wrong-password; do
			want=Access-Accept
			[ "$pw" = "$USERPW" ] || want=Access-Reject
			out=$(printf 'User-Name = user1\nUser-Password = %s\nMessage-Authenticator = 0x00\n' "$pw" |
				radclient -r 2 -t 3 "$addr" auth "$SECRET" 2>&1 || true)
			if ! grep -q "Received $want" <<<"$out"; then
				echo "bench/radius.sh: radclient expected $want from $addr:" >&2
				echo "$out" >&2
				exit 1
			fi
		done
	done
else
	log "radclient not installed (freeradius-utils): skipping its sanity check"
fi

# The count pass: a second outpost whose core requests pass a counter.
log "counting core requests: $COUNT authentications through a counting proxy"
"$work/radiusload" count-core -target "$CORE_URL" >"$work/count.out" 2>"$work/count.log" &
pids+=($!)
COUNTER_PID=$!
for _ in $(seq 1 100); do
	grep -q '^listening ' "$work/count.out" 2>/dev/null && break
	sleep 0.1
done
COUNTER_URL=$(awk '/^listening /{print $2}' "$work/count.out")
[ -n "$COUNTER_URL" ] || { echo "bench/radius.sh: the counting proxy did not start" >&2; cat "$work/count.log" >&2; exit 1; }
start_outpost "$work/outpost-count" "$COUNTER_URL"
before=$("$work/radiusload" counts "$COUNTER_URL")
if ! count_out=$("$work/radiusload" -addr "$OUR_ADDR" -secret "$SECRET" -users "$USERS" -password "$USERPW" \
	-n "$COUNT" -c "$CLIENTS"); then
	echo "bench/radius.sh: the count pass failed: $count_out" >&2
	tail -5 "$work/outpost-count/outpost.log" >&2
	exit 1
fi
after=$("$work/radiusload" counts "$COUNTER_URL")
stop "$OUR_PID"
stop "$COUNTER_PID"
accepts=$(sed -n 's/.*accepts=\([0-9]*\).*/\1/p' <<<"$count_out")
count_lines=$(awk -v n="$accepts" '
	NR == FNR { b[$2 " " $3] = $1; next }
	$2 == "CONNECTIONS" { c = $1 - b[$2 " " $3]; next }
	{ d = $1 - b[$2 " " $3]; if (d > 0) { printf "      %.2f  %s %s\n", d / n, $2, $3; t += d } }
	END { printf "%.2f %.2f\n", t / n, c / n }' <(echo "$before") <(echo "$after"))
read -r CORE_PER_AUTH CONNS_PER_AUTH <<<"$(tail -1 <<<"$count_lines")"
log "count pass: $count_out"
log "core requests per authentication: $CORE_PER_AUTH; new TCP connections to the core per authentication: $CONNS_PER_AUTH"
sed '$d' <<<"$count_lines" >&2

# load NAME ADDR PID...: one radiusload run; prints "req/s p50 p99
# cpu-ms-per-request-of-each-PID" and logs the whole line with the
# machine's idle CPU share over the run.
load() {
	local name=$1 addr=$2 out before=() after=() cpu="" i n m0 m1 idle
	shift 2
	for p in "$@"; do before+=("$(cpu_ticks "$p")"); done
	m0=$(machine_ticks)
	if ! out=$("$work/radiusload" -addr "$addr" -secret "$SECRET" -users "$USERS" -password "$USERPW" \
		-c "$CLIENTS" -d "$DURATION"); then
		echo "bench/radius.sh: the load run against $name ($addr) failed: $out" >&2
		exit 1
	fi
	m1=$(machine_ticks)
	for p in "$@"; do after+=("$(cpu_ticks "$p")"); done
	idle=$(awk -v a="$m0" -v b="$m1" 'BEGIN {split(a, x, " "); split(b, y, " ");
		printf "%.0f%%", (y[2] > x[2] ? 100 * (y[1] - x[1]) / (y[2] - x[2]) : 0)}')
	n=$(sed -n 's/.*accepts=\([0-9]*\) rejects=\([0-9]*\).*/\1 \2/p' <<<"$out" | awk '{print $1 + $2}')
	for i in "${!before[@]}"; do
		cpu+=" $(awk -v a="${after[$i]}" -v b="${before[$i]}" -v n="$n" -v hz="$HZ" \
			'BEGIN {printf "%.3f", (n > 0 ? (a - b) * 1000 / hz / n : 0)}')"
	done
	echo "   $name: $out cpu-ms/req:$cpu machine-idle=$idle" >&2
	echo "$(sed -n 's/.*req\/s=\([0-9.]*\).*p50=\([0-9.]*\)ms p99=\([0-9.]*\)ms.*/\1 \2 \3/p' <<<"$out")$cpu"
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}'; }
col() { awk -v c="$1" '{print $c}'; }

log "warming up both servers ($WARMUP each)"
for addr in "$FR_ADDR" "$OUTPOST_ADDR"; do
	"$work/radiusload" -addr "$addr" -secret "$SECRET" -users "$USERS" -password "$USERPW" -c "$CLIENTS" \
		-d "$WARMUP" >/dev/null || log "the warm-up against $addr reported failures (above); going on"
done

fr=() ours=() ratios=() fr_p50=() fr_p99=() our_p50=() our_p99=() fr_cpu=() out_cpu=() core_cpu=() loads=()
declare -A pool_rps pool_ratio pool_cpu pool_core pool_p99
for r in $(seq 1 "$ROUNDS"); do
	la=$(cut -d' ' -f1 /proc/loadavg)
	loads+=("$la")
	log "round $r (load average $la)"
	run_fr() { f=$(load "FreeRADIUS" "$FR_ADDR" "$FR_PID"); }
	run_ours() {
		if [ -n "${PERF:-}" ] && [ "$r" = "$ROUNDS" ]; then
			perf record -q -g -p "$OUTPOST_PID" -o "$PERF.outpost" -- sleep "${DURATION%s}" 2>/dev/null &
			local pa=$!
			perf record -q -g -p "$CORE_PID" -o "$PERF.core" -- sleep "${DURATION%s}" 2>/dev/null &
			local pb=$!
		fi
		o=$(load "outpost   " "$OUTPOST_ADDR" "$OUTPOST_PID" "$CORE_PID")
		if [ -n "${pa:-}" ]; then wait "$pa" "$pb" || true; fi
	}
	run_pools() {
		local i x
		for i in "${!pools[@]}"; do
			x=$(load "embedded, idle pool ${pools[$i]}" "${pool_addr[$i]}" "${pool_pid[$i]}" "$CORE_PID")
			pool_rps[$i,$r]=$(col 1 <<<"$x") pool_p99[$i,$r]=$(col 3 <<<"$x")
			pool_cpu[$i,$r]=$(col 4 <<<"$x") pool_core[$i,$r]=$(col 5 <<<"$x")
		done
	}
	if [ $((r % 2)) = 1 ]; then run_fr; run_ours; run_pools; else run_pools; run_ours; run_fr; fi
	for i in "${!pools[@]}"; do pool_ratio[$i,$r]=$(ratio "${pool_rps[$i,$r]}" "$(col 1 <<<"$o")"); done
	fr+=("$(col 1 <<<"$f")") fr_p50+=("$(col 2 <<<"$f")") fr_p99+=("$(col 3 <<<"$f")") fr_cpu+=("$(col 4 <<<"$f")")
	ours+=("$(col 1 <<<"$o")") our_p50+=("$(col 2 <<<"$o")") our_p99+=("$(col 3 <<<"$o")")
	out_cpu+=("$(col 4 <<<"$o")") core_cpu+=("$(col 5 <<<"$o")")
	ratios+=("$(ratio "${ours[-1]}" "${fr[-1]}")")
	log "round $r ratio outpost/FreeRADIUS: ${ratios[-1]}"
done

if [ -n "${PERF:-}" ]; then
	for side in outpost core; do
		echo
		echo "$PERF.$side: self time by package (perf report --no-children):"
		perf report -i "$PERF.$side" --no-children --stdio -g none --sort dso,symbol 2>/dev/null |
			awk '$1 ~ /%$/ {
				p = $1; sub(/%/, "", p)
				if ($3 == "[k]") { k = "[kernel]" } else {
					sym = $4; sub(/\[.*/, "", sym)
					n = split(sym, parts, "/"); last = parts[n]; sub(/\..*/, "", last)
					k = (n > 1 ? substr(sym, 1, length(sym) - length(parts[n])) : "") last
					if (index(sym, ".") == 0) k = $2 ":" sym
				}
				t[k] += p
			} END { for (k in t) printf "  %6.2f%%  %s\n", t[k], k }' | sort -rn | head -15
		echo "$PERF.$side: time with these frames on the stack (perf report --children):"
		perf report -i "$PERF.$side" --children --stdio -g none --sort symbol 2>/dev/null |
			awk '$1 ~ /%$/ && $4 ~ /akoutpost\/akoutpost\/(radius|outpost\/flow|outpost\/outposttest)\.|bcrypt\.|net\/http\.\(\*Transport\)\.dialConn$|net\/http\.\(\*conn\)\.serve$|runtime\.gcBgMarkWorker$|encoding\/json\.(Unmarshal|Marshal)$/ {
				printf "  %6s  %s\n", $1, $4 }' | head -25
	done
fi

oc=$(median "${out_cpu[@]}") cc=$(median "${core_cpu[@]}")
echo
echo "RADIUS PAP benchmark: $ROUNDS rounds of $DURATION, $CLIENTS workers, $USERS users, $(nproc) cores; load average at the rounds' start: ${loads[*]}"
echo "  FreeRADIUS $("$FREERADIUS" -v 2>/dev/null | sed -n '1s/.*Version \([^,]*\),.*/\1/p') (files + pap, Cleartext-Password): median $(median "${fr[@]}") req/s (rounds ${fr[*]}), p50 $(median "${fr_p50[@]}") ms, p99 $(median "${fr_p99[@]}") ms, CPU $(median "${fr_cpu[@]}") ms/req"
echo "  outpost + test core: median $(median "${ours[@]}") req/s (rounds ${ours[*]}), p50 $(median "${our_p50[@]}") ms, p99 $(median "${our_p99[@]}") ms"
echo "  CPU per authentication: outpost $oc ms, test core $cc ms (the core's share $(awk -v a="$oc" -v b="$cc" 'BEGIN {printf "%.0f%%", (a + b > 0 ? 100 * b / (a + b) : 0)}'))"
echo "  core requests per authentication: $CORE_PER_AUTH, new TCP connections to the core per authentication: $CONNS_PER_AUTH (count pass: $COUNT authentications, $CLIENTS workers)"
for i in "${!pools[@]}"; do
	v() { local -n a=$1; local r; for r in $(seq 1 "$ROUNDS"); do echo "${a[$i,$r]}"; done; }
	# shellcheck disable=SC2046 # one value a line, no spaces
	echo "  embedded outpost, idle pool ${pools[$i]}: median $(median $(v pool_rps)) req/s (rounds $(v pool_rps | xargs)), p99 $(median $(v pool_p99)) ms, CPU per authentication outpost $(median $(v pool_cpu)) ms, test core $(median $(v pool_core)) ms; to the command's outpost: median per-round $(median $(v pool_ratio)) (rounds $(v pool_ratio | xargs))"
done
echo "  ratio outpost/FreeRADIUS: median per-round $(median "${ratios[@]}") (rounds ${ratios[*]}), ratio of medians $(ratio "$(median "${ours[@]}")" "$(median "${fr[@]}")")"
