#!/usr/bin/env bash
# loadtest-demo.sh: build chaser and chaser-load, start `chaser serve --demo`
# on loopback with a fresh data directory, wait until it is healthy, measure it
# with chaser-load in check mode, then stop it with SIGTERM.
#
#   bash scripts/loadtest-demo.sh                  # 500 qps for 10 s, --check
#   QPS=2000 DURATION=30s bash scripts/loadtest-demo.sh --json
#   bash scripts/loadtest-demo.sh --baseline --qps 0   # extra flags go to chaser-load
#   PREPARE=1 bash scripts/loadtest-demo.sh --qps 0 --no-notices
#       # first `chaser-load --prepare` (the realistic mix: 50 audiences of 1 M
#       # uids, 20 campaigns; PREP_FLAGS="--prep-members 100000" to shrink it)
#
# Exit status: chaser-load's (0 passed, 1 check failed, 2 bad flags or the
# prepare step failed), or 3 when the server could not be built or started.
set -euo pipefail

cd "$(dirname "$0")/.."

BID_ADDR=${BID_ADDR:-127.0.0.1:18080}
ADMIN_ADDR=${ADMIN_ADDR:-127.0.0.1:18081}
QPS=${QPS-500}           # set empty to pass no --qps (e.g. --overload probes for the rate)
DURATION=${DURATION-10s} # set empty to pass no --duration
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-60} # seconds
PREPARE=${PREPARE:-}     # non-empty: run `chaser-load --prepare $PREP_FLAGS` before the load run
PREP_FLAGS=${PREP_FLAGS:-}
SETTLE=${SETTLE:-20}     # with PREPARE: seconds to wait after it, while Pebble compacts what was uploaded

log() { echo "loadtest-demo: $*" >&2; }

# http_status HOST:PORT PATH prints the HTTP status of a GET, or nothing.
http_status() {
	local host=${1%:*} port=${1##*:} path=$2 line
	if command -v curl >/dev/null 2>&1; then
		curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$1$path" 2>/dev/null | grep -v '^000$' || true
		return
	fi
	# No curl: speak HTTP/1.0 over bash's /dev/tcp.
	if exec 3<>"/dev/tcp/$host/$port" 2>/dev/null; then
		printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$1" >&3
		IFS=' ' read -r -t 2 _ line _ <&3 || true
		exec 3<&- 3>&-
		echo "${line:-}"
	fi
}

log "building bin/chaser and bin/chaser-load"
mkdir -p bin
if ! go build -o bin/chaser ./cmd/chaser || ! go build -o bin/chaser-load ./cmd/chaser-load; then
	log "build failed"
	exit 3
fi

if [ -n "$(http_status "$BID_ADDR" /healthz)" ]; then
	log "something already answers on $BID_ADDR; stop it or set BID_ADDR"
	exit 3
fi

DATA_DIR=$(mktemp -d)
SERVER_LOG="$DATA_DIR/chaser.log"
SERVER_PID=
cleanup() {
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		log "stopping chaser (pid $SERVER_PID) with SIGTERM"
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$SERVER_PID" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$SERVER_PID" 2>/dev/null; then
			log "chaser did not stop within 10s of SIGTERM; killing it"
			kill -KILL "$SERVER_PID" 2>/dev/null || true
		fi
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	rm -rf "$DATA_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The admin key for the prepare step: the caller's, or a fresh one.
if [ -n "$PREPARE" ]; then
	if [ -z "${CHASER_ADMIN_TOKEN:-}" ]; then
		CHASER_ADMIN_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
	fi
	export CHASER_ADMIN_TOKEN
fi

log "starting chaser serve --demo (data dir $DATA_DIR, bid $BID_ADDR, admin $ADMIN_ADDR)"
bin/chaser serve --demo --data-dir "$DATA_DIR" --bid-addr "$BID_ADDR" --admin-addr "$ADMIN_ADDR" >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

deadline=$((SECONDS + STARTUP_TIMEOUT))
until [ "$(http_status "$BID_ADDR" /healthz)" = 200 ]; do
	if ! kill -0 "$SERVER_PID" 2>/dev/null; then
		log "chaser exited during startup; its log:"
		cat "$SERVER_LOG" >&2
		SERVER_PID=
		exit 3
	fi
	if [ "$SECONDS" -ge "$deadline" ]; then
		log "chaser not healthy after ${STARTUP_TIMEOUT}s; its log:"
		cat "$SERVER_LOG" >&2
		exit 3
	fi
	sleep 0.2
done
log "chaser is healthy"

if [ -n "$PREPARE" ]; then
	log "preparing the realistic mix: chaser-load --prepare $PREP_FLAGS"
	# Its report goes to stderr: stdout is the load run's (--json).
	# shellcheck disable=SC2086 # PREP_FLAGS is a list of flags
	if ! bin/chaser-load --prepare --admin "http://$ADMIN_ADDR" $PREP_FLAGS >&2; then
		log "prepare failed; last lines of the server log:"
		tail -n 20 "$SERVER_LOG" >&2
		exit 2
	fi
	if [ -r "/proc/$SERVER_PID/status" ]; then
		log "after prepare: server $(grep -E 'VmRSS|VmHWM' "/proc/$SERVER_PID/status" | tr -s ' \t\n' ' '), data dir $(du -sh "$DATA_DIR" | cut -f1)"
	fi
	if [ "$SETTLE" -gt 0 ]; then
		log "waiting ${SETTLE}s for the server's compactions to settle (SETTLE=0 to skip)"
		sleep "$SETTLE"
	fi
fi

status=0
bin/chaser-load --target "http://$BID_ADDR" ${QPS:+--qps "$QPS"} ${DURATION:+--duration "$DURATION"} --check "$@" || status=$?
if [ "$status" -ne 0 ]; then
	log "chaser-load exited with $status; last lines of the server log:"
	tail -n 20 "$SERVER_LOG" >&2
fi
exit "$status"
