#!/bin/sh
# Checks deploy/tessera.service with `systemd-analyze verify` (systemd need
# not be running): a copy of the unit whose ExecStart names BINARY (the real
# /usr/local/bin/tessera is usually absent, and verify checks that the
# command exists), in a temporary directory. Any line verify prints is a
# failure. With a systemd that has `security --offline`, the exposure score
# is printed too and must stay at or below MAX_EXPOSURE (default 1.5: the
# unit scores 1.2 with systemd 252; without DynamicUser and with a capability
# it scores 1.8).
#
#   deploy/check.sh target/debug/tessera
#
# Exits 0 when the unit is clean, 1 when not, 2 on a usage error.
set -eu

usage() { echo "usage: $0 BINARY   (e.g. target/release/tessera)" >&2; exit 2; }
[ $# -eq 1 ] || usage
here=$(cd "$(dirname "$0")" && pwd)
unit="$here/tessera.service"
binary=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[ -x "$binary" ] || { echo "$0: $1 is not an executable file" >&2; exit 2; }
command -v systemd-analyze >/dev/null || { echo "$0: systemd-analyze not found" >&2; exit 2; }
max=${MAX_EXPOSURE:-1.5}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
sed "s#^ExecStart=/usr/local/bin/tessera #ExecStart=$binary #" "$unit" >"$tmp/tessera.service"
grep -q "^ExecStart=$binary serve\$" "$tmp/tessera.service" || {
    echo "$0: ExecStart=/usr/local/bin/tessera serve not found in $unit" >&2
    exit 1
}

status=0
out=$(cd "$tmp" && systemd-analyze verify ./tessera.service 2>&1) || status=1
if [ -n "$out" ]; then
    printf '%s\n' "$out"
    status=1
fi
[ $status -eq 0 ] && echo "systemd-analyze verify: clean"

if sec=$(cd "$tmp" && systemd-analyze security --offline=true ./tessera.service 2>&1); then
    line=$(printf '%s\n' "$sec" | grep 'Overall exposure level') || line=
    echo "${line:-systemd-analyze security: no overall line}"
    score=$(printf '%s\n' "$line" | sed -n 's/.*: \([0-9.]*\) .*/\1/p')
    if [ -z "$score" ] || awk -v s="$score" -v m="$max" 'BEGIN { exit !(s > m) }'; then
        echo "exposure ${score:-unknown} is above $max" >&2
        status=1
    fi
else
    echo "systemd-analyze security --offline not available here; skipped"
fi
exit $status
