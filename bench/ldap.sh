#!/usr/bin/env bash
# bench/ldap.sh: the LDAP rows of issue 6, side by side with OpenLDAP slapd.
#
#   bench/ldap.sh                 # all three scenarios, 3 rounds of 10 s each
#   ROUNDS=1 DURATION=3s bench/ldap.sh   # a short smoke run
#   SCENARIOS="a c" bench/ldap.sh        # only some scenarios
#   FLOOR=1 bench/ldap.sh                # a and c also against the protocol floor
#
# Scenarios (each alternates baseline and subject, ROUNDS times):
#   a  equality search, 10,000 users: outpost vs slapd              target >= 1.0x
#   b  equality search, 100,000 users (USERS_LARGE, with GROUPS_LARGE
#      groups: 10,000): outpost vs outpost at 10,000        target >= 0.9x
#   c  simple bind, cached bind mode, warm: outpost vs slapd         target >= 1.0x
#
# Both servers hold the population bench/genblueprint writes (users
# user0..userN-1, password "benchpass"): the outpost through
# `akoutpost testcore --blueprint` and `akoutpost run` (cached search and
# cached bind mode), slapd through slapadd of the generator's LDIF.
#
# The search is one entry by an indexed equality match under ou=users, with
# the same attribute list for both: cn uid mail memberOf (ATTRS). The filter
# attribute is the one holding "userN" on each side: uid on slapd (the
# generator writes uid=userN; `index uid eq`), cn on the outpost (its uid is
# authentik's opaque user uid; cn, the username, is indexed). The search
# base is ou=users so that each search returns exactly one entry on both
# (the outpost's whole-tree search for cn=userN would also return the
# user's virtual group).
#
# slapd is made as fast as it goes: back-mdb with `index uid eq`, loglevel 0,
# dbnosync, THREADS worker threads (default: one per core, which was
# fastest for slapd on the 2-core machine against 4, 8 and 16), no size
# limit, search clients bound as the rootdn (ACLs are not evaluated for it). userPassword is {SSHA} (the
# generator's default), salted like the outpost's cached bind, which keeps
# an HMAC-SHA256 of the password with a per-entry salt; cleartext would
# favour slapd and would not be what anyone deploys.
#
# Scenario c binds BIND_USERS users (default 2,000 of the 10,000) once on
# each server before timing ("warm"): on the outpost that fills the bind
# cache through the test core's flow executor; on slapd it warms its
# caches. The timed binds then pick a random user of those each time.
#
# FLOOR=1 also runs bench/ldapfloor, an LDAP server that answers every bind
# with success and every search with one canned, pre-encoded entry shaped
# like the outpost's (cn, uid, memberOf) and searchResDone: no lookup, no
# filter, no password check, but whole-frame reads with a size bound, the
# request's BER checked, message IDs echoed and one write per response
# group. Scenarios a and c then measure it in every round beside slapd and
# the outpost, the outpost and the floor in alternating order (floor first
# in odd rounds), and report the outpost as a ratio to it as well.
# Target: equality search >= 0.7x the floor (issue 13).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CLIENTS=${CLIENTS:-8}
THREADS=${THREADS:-$(nproc)}
SCENARIOS=${SCENARIOS:-"a b c"}
BIND_USERS=${BIND_USERS:-2000}
ATTRS=${ATTRS:-cn,uid,mail,memberOf}
GROUPS_SMALL=${GROUPS_SMALL:-1000}
GROUPS_LARGE=${GROUPS_LARGE:-10000}
USERS_LARGE=${USERS_LARGE:-100000}

for tool in slapd slapadd go; do
	if ! command -v "$tool" >/dev/null && ! [ -x "/usr/sbin/$tool" ]; then
		echo "bench/ldap.sh: $tool not found (Debian: apt-get install slapd ldap-utils)" >&2
		exit 1
	fi
done
SLAPD=$(command -v slapd || echo /usr/sbin/slapd)
SLAPADD=$(command -v slapadd || echo /usr/sbin/slapadd)
SCHEMA=${SCHEMA:-/etc/ldap/schema}
MODULES=${MODULES:-/usr/lib/ldap}

repo=$(cd "$(dirname "$0")/.." && pwd)
. "$(dirname "$0")/common.sh"

log "building into $work (load average $(cut -d' ' -f1-3 /proc/loadavg))"
(cd "$repo" && go build -o "$work/akoutpost" ./cmd/akoutpost &&
	go build -o "$work/genblueprint" ./bench/genblueprint &&
	go build -o "$work/ldapload" ./bench/ldapload &&
	if [ -n "${FLOOR:-}" ]; then go build -o "$work/ldapfloor" ./bench/ldapfloor; fi)

OURBASE=dc=ldap,dc=goauthentik,dc=io
SLAPBASE=dc=example,dc=org
ROOTDN=cn=admin,$SLAPBASE
ROOTPW=rootsecret
SVCDN=cn=ldapservice,ou=users,$OURBASE
SVCPW=servicepass
USERPW=benchpass

# start_slapd DIR LDIF: slapadd the LDIF into a fresh mdb and run slapd in
# the foreground (-d 0: no debug output, no fork) on a free loopback port.
# Sets SLAPD_ADDR.
start_slapd() {
	local dir=$1 ldif=$2 port
	port=$(free_port)
	mkdir -p "$dir/db"
	cat >"$dir/slapd.conf" <<EOF
include $SCHEMA/core.schema
include $SCHEMA/cosine.schema
include $SCHEMA/inetorgperson.schema
include $SCHEMA/nis.schema
modulepath $MODULES
moduleload back_mdb
pidfile $dir/slapd.pid
argsfile $dir/slapd.args
loglevel 0
threads $THREADS
sizelimit unlimited
database mdb
suffix "$SLAPBASE"
rootdn "$ROOTDN"
rootpw $ROOTPW
directory $dir/db
maxsize 8589934592
dbnosync
index objectClass eq
index uid eq
access to attrs=userPassword by anonymous auth by * none
access to * by * read
EOF
	"$SLAPADD" -q -f "$dir/slapd.conf" -l "$ldif"
	"$SLAPD" -f "$dir/slapd.conf" -h "ldap://127.0.0.1:$port/" -d 0 >"$dir/slapd.log" 2>&1 &
	pids+=($!)
	SLAPD_ADDR=127.0.0.1:$port
	wait_ldap "$SLAPD_ADDR" "ou=users,$SLAPBASE" "$ROOTDN" "$ROOTPW" uid "$dir/slapd.log" "${pids[-1]}"
}

# start_outpost DIR BLUEPRINT: a test core serving the blueprint and an
# outpost against it. Sets OUR_ADDR.
start_outpost() {
	local dir=$1 bp=$2 token url
	mkdir -p "$dir"
	"$work/akoutpost" testcore --blueprint "$bp" --listen 127.0.0.1:0 >"$dir/core.out" 2>"$dir/core.log" &
	pids+=($!)
	for _ in $(seq 1 600); do
		grep -q '^listening ' "$dir/core.out" 2>/dev/null && break
		sleep 0.1
	done
	url=$(awk '/^listening /{print $2}' "$dir/core.out")
	token=$(awk '/^outpost ldap-bench /{print $6}' "$dir/core.out")
	if [ -z "$url" ] || [ -z "$token" ]; then
		echo "bench/ldap.sh: the test core did not start:" >&2
		tail -20 "$dir/core.log" >&2
		exit 1
	fi
	local ldap ldaps http https metrics
	ldap=$(free_port) ldaps=$(free_port) http=$(free_port) https=$(free_port) metrics=$(free_port)
	AUTHENTIK_HOST=$url AUTHENTIK_TOKEN=$token AUTHENTIK_LOG_LEVEL=warning \
		AUTHENTIK_LISTEN__LDAP=127.0.0.1:$ldap AUTHENTIK_LISTEN__LDAPS=127.0.0.1:$ldaps \
		AUTHENTIK_LISTEN__HTTP=127.0.0.1:$http AUTHENTIK_LISTEN__HTTPS=127.0.0.1:$https \
		AUTHENTIK_LISTEN__METRICS=127.0.0.1:$metrics \
		"$work/akoutpost" run >"$dir/outpost.out" 2>"$dir/outpost.log" &
	pids+=($!)
	OUR_ADDR=127.0.0.1:$ldap
	wait_ldap "$OUR_ADDR" "ou=users,$OURBASE" "$SVCDN" "$SVCPW" cn "$dir/outpost.log" "${pids[-1]}"
}

# start_floor: the protocol floor on a free loopback port. Sets FLOOR_ADDR.
start_floor() {
	local port
	port=$(free_port)
	mkdir -p "$work/floor"
	"$work/ldapfloor" -listen "127.0.0.1:$port" >"$work/floor/floor.out" 2>"$work/floor/floor.log" &
	pids+=($!)
	FLOOR_ADDR=127.0.0.1:$port
	wait_ldap "$FLOOR_ADDR" "ou=users,$OURBASE" "$SVCDN" "$SVCPW" cn "$work/floor/floor.log" "${pids[-1]}"
}

# wait_ldap ADDR BASE DN PW ATTR LOG PID: until the first user is
# searchable; fails at once if the server (PID) exited, with its log and
# the last client error.
wait_ldap() {
	local addr=$1 base=$2 dn=$3 pw=$4 attr=$5 logf=$6 pid=$7 err=""
	for _ in $(seq 1 1200); do
		if err=$("$work/ldapload" -addr "$addr" -base "$base" -binddn "$dn" -bindpw "$pw" -filterattr "$attr" \
			-users 1 -c 1 -d 10ms 2>&1 >/dev/null); then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			local status=0
			wait "$pid" 2>/dev/null || status=$?
			echo "bench/ldap.sh: the LDAP server for $addr exited (status $status):" >&2
			tail -20 "$logf" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "bench/ldap.sh: LDAP server on $addr did not become ready; last client error: $err" >&2
	tail -20 "$logf" >&2
	exit 1
}

# load NAME ARGS...: one ldapload run; prints ops/s and records the line.
load() {
	local name=$1 out
	shift
	out=$("$work/ldapload" -c "$CLIENTS" -d "$DURATION" "$@")
	echo "   $name: $out" >&2
	echo "$out" | sed -n 's/.*ops\/s=\([0-9.]*\).*/\1/p'
}

search_slapd() {
	load "slapd  " -addr "$SLAPD_ADDR" -mode search -base "ou=users,$SLAPBASE" -filterattr uid -attrs "$ATTRS" \
		-binddn "$ROOTDN" -bindpw "$ROOTPW" -users "$1"
}
search_ours() {
	load "outpost" -addr "$OUR_ADDR" -mode search -base "ou=users,$OURBASE" -filterattr cn -attrs "$ATTRS" \
		-binddn "$SVCDN" -bindpw "$SVCPW" -users "$1"
}
# The floor is asked exactly what the outpost is asked.
search_floor() {
	load "floor  " -addr "$FLOOR_ADDR" -mode search -base "ou=users,$OURBASE" -filterattr cn -attrs "$ATTRS" \
		-binddn "$SVCDN" -bindpw "$SVCPW" -users "$1"
}
bind_ours() {
	load "outpost" -addr "$OUR_ADDR" -mode bind -userattr cn -userbase "ou=users,$OURBASE" \
		-userpw "$USERPW" -users "$BIND_USERS"
}
bind_floor() {
	load "floor  " -addr "$FLOOR_ADDR" -mode bind -userattr cn -userbase "ou=users,$OURBASE" \
		-userpw "$USERPW" -users "$BIND_USERS"
}
# floor_first ROUND: whether the floor goes before the outpost this round.
floor_first() { [ -n "${FLOOR:-}" ] && [ $(($1 % 2)) = 1 ]; }

# median of the arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }
# paired NAME_OF_SUBJECT_ARRAY NAME_OF_BASELINE_ARRAY: the median of the
# per-round ratios subject/baseline. Each round's two runs are adjacent in
# time, so this is less exposed to load drifting on a shared machine than
# the ratio of the medians.
paired() {
	local -n subj=$1 basel=$2
	local rs=() i
	for i in "${!subj[@]}"; do
		rs+=("$(ratio "${subj[$i]}" "${basel[$i]}")")
	done
	median "${rs[@]}"
}
# perround NAME_OF_SUBJECT_ARRAY NAME_OF_BASELINE_ARRAY: the per-round
# ratios, comma-separated.
perround() {
	local -n subj=$1 basel=$2
	local rs=() i
	for i in "${!subj[@]}"; do
		rs+=("$(ratio "${subj[$i]}" "${basel[$i]}")")
	done
	local IFS=,
	echo "${rs[*]}"
}
# loadavg: the 1, 5 and 15-minute load averages.
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

summary=()
has() { [[ " $SCENARIOS " == *" $1 "* ]]; }

log "generating 10,000 users (blueprint and LDIF)"
"$work/genblueprint" -users 10000 -groups "$GROUPS_SMALL" -blueprint "$work/bp10k.yaml" \
	-ldif "$work/slapd10k.ldif" -ldif-base "$SLAPBASE" -password "$USERPW" -service-password "$SVCPW"

if has a || has b || has c; then
	log "starting slapd (10,000 users) and the outpost (10,000 users)"
	start_slapd "$work/slapd10k" "$work/slapd10k.ldif"
	start_outpost "$work/ours10k" "$work/bp10k.yaml"
	if [ -n "${FLOOR:-}" ] && { has a || has c; }; then
		log "starting the protocol floor"
		start_floor
	fi
fi

ours10k=()
if has a || has b; then
	log "scenario a: equality search, 10,000 users ($ROUNDS rounds of $DURATION, $CLIENTS clients)"
	slap=() floor=()
	for r in $(seq 1 "$ROUNDS"); do
		log "round $r (load average $(loadavg))"
		slap+=("$(search_slapd 10000)")
		if floor_first "$r"; then floor+=("$(search_floor 10000)"); fi
		ours10k+=("$(search_ours 10000)")
		if [ -n "${FLOOR:-}" ] && ! floor_first "$r"; then floor+=("$(search_floor 10000)"); fi
	done
	if has a; then
		s=$(median "${slap[@]}") o=$(median "${ours10k[@]}")
		summary+=("a | search (uid=userN), 10k users | slapd $s/s | outpost $o/s | ratio of medians $(ratio "$o" "$s"), median per-round ratio $(paired ours10k slap) | target >= 1.0")
		if [ -n "${FLOOR:-}" ]; then
			f=$(median "${floor[@]}")
			summary+=("a | search (cn=userN), 10k users, vs the floor | floor $f/s | outpost $o/s | ratio of medians $(ratio "$o" "$f"), median per-round ratio $(paired ours10k floor) (rounds $(perround ours10k floor)) | target >= 0.7")
		fi
	fi
fi

if has c; then
	log "scenario c: simple bind, cached bind mode, warm ($BIND_USERS users bound once first)"
	load "slapd   warm" -addr "$SLAPD_ADDR" -mode bind -userattr cn -userbase "ou=users,$SLAPBASE" -userpw "$USERPW" \
		-users "$BIND_USERS" -warm -d 100ms >/dev/null
	load "outpost warm" -addr "$OUR_ADDR" -mode bind -userattr cn -userbase "ou=users,$OURBASE" -userpw "$USERPW" \
		-users "$BIND_USERS" -warm -d 100ms >/dev/null
	slap=() ours=() floor=()
	for r in $(seq 1 "$ROUNDS"); do
		log "round $r (load average $(loadavg))"
		slap+=("$(load "slapd  " -addr "$SLAPD_ADDR" -mode bind -userattr cn -userbase "ou=users,$SLAPBASE" \
			-userpw "$USERPW" -users "$BIND_USERS")")
		if floor_first "$r"; then floor+=("$(bind_floor)"); fi
		ours+=("$(bind_ours)")
		if [ -n "${FLOOR:-}" ] && ! floor_first "$r"; then floor+=("$(bind_floor)"); fi
	done
	s=$(median "${slap[@]}") o=$(median "${ours[@]}")
	summary+=("c | simple bind, cached, warm, $BIND_USERS users | slapd $s/s | outpost $o/s | ratio of medians $(ratio "$o" "$s"), median per-round ratio $(paired ours slap) | target >= 1.0")
	if [ -n "${FLOOR:-}" ]; then
		f=$(median "${floor[@]}")
		summary+=("c | simple bind, cached, warm, vs the floor | floor $f/s | outpost $o/s | ratio of medians $(ratio "$o" "$f"), median per-round ratio $(paired ours floor) (rounds $(perround ours floor)) | no target")
	fi
fi

if has b; then
	log "generating $USERS_LARGE users, $GROUPS_LARGE groups"
	"$work/genblueprint" -users "$USERS_LARGE" -groups "$GROUPS_LARGE" -blueprint "$work/bp100k.yaml" \
		-password "$USERPW" -service-password "$SVCPW"
	log "starting the outpost ($USERS_LARGE users)"
	start=$(date +%s)
	OUR_ADDR_10K=$OUR_ADDR
	start_outpost "$work/ours100k" "$work/bp100k.yaml"
	OUR_ADDR_100K=$OUR_ADDR
	log "$USERS_LARGE-user outpost ready after $(($(date +%s) - start)) s (test core load included)"
	small=() large=()
	for r in $(seq 1 "$ROUNDS"); do
		log "round $r (load average $(loadavg))"
		# The two in alternating order, so neither always runs second.
		if [ $((r % 2)) -eq 0 ]; then
			OUR_ADDR=$OUR_ADDR_100K
			large+=("$(search_ours "$USERS_LARGE")")
		fi
		OUR_ADDR=$OUR_ADDR_10K
		small+=("$(search_ours 10000)")
		if [ $((r % 2)) -eq 1 ]; then
			OUR_ADDR=$OUR_ADDR_100K
			large+=("$(search_ours "$USERS_LARGE")")
		fi
	done
	s=$(median "${small[@]}") o=$(median "${large[@]}")
	summary+=("b | search, $USERS_LARGE users, $GROUPS_LARGE groups vs our 10k | outpost-10k $s/s | outpost-large $o/s | ratio of medians $(ratio "$o" "$s"), median per-round ratio $(paired large small) | target >= 0.9")
fi

echo
echo "LDAP benchmark summary (medians of $ROUNDS rounds of $DURATION, $CLIENTS clients, $(nproc) cores; ratios are same-run)"
echo "attributes requested: $ATTRS; slapd userPassword {SSHA}; slapd threads $THREADS"
for line in "${summary[@]}"; do
	echo "  $line"
done
