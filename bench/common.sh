# Sourced by the LDAP and idle scripts under bench/: a temporary work
# directory and the processes started in it, both cleaned up on exit, and a
# free loopback port finder. The HTTP scripts have their own in
# bench/httpbench/lib.sh.

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

log() { echo "== $*" >&2; }

# free_port prints a loopback TCP port nothing answers on.
free_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	echo "no free loopback port found" >&2
	return 1
}
