# bench/httpbench/lib.sh is shared by bench/proxy.sh and bench/nginx.sh (sourced, not run): a temp dir,
# the processes started and stopped with the script, wrk rounds and the
# summary. Expects CONNS, THREADS and DURATION set.

work=$(mktemp -d)
pids=()
cleanup() {
	# Only the processes this script started, by their pid.
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ -n "${KEEP:-}" ]; then echo "logs kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
# A signal ends the script through exit, so the EXIT trap still stops
# everything.
trap 'exit 130' INT TERM

# start NAME CMD...: runs CMD in the background, output in $work/NAME.log.
start() {
	local name=$1
	shift
	"$@" >"$work/$name.log" 2>&1 &
	pids+=($!)
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT (10 s at most).
wait_port() {
	for _ in $(seq 200); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	echo "nothing listens on port $1" >&2
	exit 1
}

# start_core ADDR UPSTREAM: the test core on bench/httpbench/bench.yaml; sets core_url
# and core_token from the lines it prints.
start_core() {
	BENCH_UPSTREAM=$2 "$work/akoutpost" testcore --blueprint bench/httpbench/bench.yaml --listen "$1" \
		>"$work/core.out" 2>"$work/core.log" &
	pids+=($!)
	for _ in $(seq 200); do
		grep -q '^listening ' "$work/core.out" 2>/dev/null && break
		sleep 0.05
	done
	core_url=$(awk '$1 == "listening" {print $2}' "$work/core.out")
	core_token=$(awk '$1 == "outpost" && $2 == "bench-proxy" {print $6}' "$work/core.out")
	if [ -z "$core_url" ] || [ -z "$core_token" ]; then
		echo "the test core did not start:" >&2
		cat "$work/core.out" "$work/core.log" >&2
		exit 1
	fi
}

# measure SIDE ROUND ADDR WRK-ARGS...: one wrk run against http://ADDR/,
# appending "SIDE req/s p99-ms" to $results_file (default $work/results,
# which summary reads).
measure() {
	local side=$1 round=$2 addr=$3
	shift 3
	local out
	out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$@" "http://$addr/")
	if grep -q -e '^  Non-2xx' -e '^  Socket errors' <<<"$out"; then
		echo "$side round $round had errors:" >&2
		echo "$out" >&2
		exit 1
	fi
	local rps p99
	rps=$(awk '$1 == "Requests/sec:" {print $2}' <<<"$out")
	# wrk prints latencies as 812.00us, 1.20ms or 1.02s: convert to ms.
	p99=$(awk '$1 == "99%" {v = $2; f = 1
		if (v ~ /us$/) f = 0.001; else if (v ~ /ms$/) f = 1; else if (v ~ /s$/) f = 1000
		sub(/[a-z]+$/, "", v); printf "%.3f", v * f}' <<<"$out")
	printf '%-9s round %s: %10.0f req/s  p99 %8.3f ms\n' "$side" "$round" "$rps" "$p99"
	echo "$side $rps $p99" >>"${results_file:-$work/results}"
}

# measure_load SIDE ROUND ADDR URL LOAD-ARGS...: like measure, with
# `httpbench load` (a Go client over HTTPS; wrk has no HTTP/2) connecting
# to ADDR for URL.
measure_load() {
	local side=$1 round=$2 addr=$3 url=$4
	shift 4
	local out
	if ! out=$("$work/httpbench" load -connect "$addr" -url "$url" -duration "$DURATION" "$@" 2>&1); then
		echo "$side round $round had errors:" >&2
		echo "$out" >&2
		exit 1
	fi
	local rps p99
	rps=$(awk '$1 == "Requests/sec:" {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%:" {print $2}' <<<"$out")
	printf '%-9s round %s: %10.0f req/s  p99 %8.3f ms\n' "$side" "$round" "$rps" "$p99"
	echo "$side $rps $p99" >>"${results_file:-$work/results}"
}

# summary TITLE MIN-RPS-RATIO [MAX-P99-RATIO]: means over the rounds, and
# the ratio of the subject to the baseline in each round (the baseline run
# just before it). The verdict uses the median of those per-round ratios:
# pairing cancels drift on a shared machine, the median one disturbed round.
# It reads $results_file (default $work/results), where the baseline's
# lines are those of side $baseline_side (default "baseline").
summary() {
	awk -v title="$1" -v min="$2" -v max="${3:-}" -v base="${baseline_side:-baseline}" '
		function median(a, n,   i, j, t) {
			for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		$1 == base { nb++; brps += $2; bp99 += $3; lr = $2; lp = $3; next }
		{ ns++; srps += $2; sp99 += $3; rr[ns] = $2 / lr; rp[ns] = $3 / lp }
		END {
			printf "\n%s (%d rounds)\n", title, nb
			printf "baseline  mean %10.0f req/s  p99 %8.3f ms\n", brps / nb, bp99 / nb
			printf "outpost   mean %10.0f req/s  p99 %8.3f ms\n", srps / ns, sp99 / ns
			printf "per-round ratios req/s:"; for (i = 1; i <= ns; i++) printf " %.2f", rr[i]; printf "\n"
			r = median(rr, ns); l = median(rp, ns)
			printf "ratio (median of rounds) %.3fx req/s (target >= %s)", r, min
			if (max != "") printf ", %.3fx p99 (target <= %s)", l, max
			ok = r >= min && (max == "" || l <= max)
			printf "  %s\n", (ok ? "MET" : "MISSED")
		}' "${results_file:-$work/results}"
}

# perf_round ROUND records the outpost with perf during the last round,
# when PERF names the file to write; perf_wait waits for that recording.
perf_round() {
	if [ -n "${PERF:-}" ] && [ "$1" = "$ROUNDS" ]; then
		perf record -q -g -p "$outpost_pid" -o "$PERF" -- sleep "${DURATION%s}" 2>/dev/null &
		perf_pid=$!
	fi
}
perf_wait() { if [ -n "${perf_pid:-}" ]; then wait "$perf_pid" || true; fi; }
