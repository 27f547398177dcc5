#!/usr/bin/env bash
# Churn (eventfs-history §4 scenarios 2, 5, 22): a writer creates and deletes a synthetic event
# while readers `ls` and `cat` it, and enable writes run in an instance. A created event that
# cannot be read at once ("spurious ENOENT"), a deleted one still visible ("stale hit"), a torn
# `format`, or any other error is an anomaly.
#
# Writes: the instance `instances/stress_churn_$$` (created and removed here), and, on utracefs
# only, the top-level `dynamic_events`. On a kernel tracefs dynamic events are global state, so
# the event churn is skipped there and only the instance is written to.
#   churn.sh TRACEFS_ROOT [--seconds S] [--threads N]
set -u
. "$(dirname "$0")/common.sh"

inst="$root/instances/stress_churn_$$"
mkdir "$inst" || exit 2
ev=stress_churn_$$
dyn=1
if [ $kernel = 1 ] || ! grep -q 's:\[synthetic/\]' "$root/README" 2>/dev/null; then
    dyn=0; echo "note: no synthetic event churn on $fstype (kernel dynamic events are global)" >&2
fi

churner() {   # create, check visible everywhere, delete, check gone everywhere
    while [ $SECONDS -lt $end ]; do
        echo "s:$ev u64 lat; pid_t pid" >> "$root/dynamic_events" 2>/dev/null || { anomaly "create failed" "$ev"; continue; }
        for d in "$root/events/synthetic/$ev" "$inst/events/synthetic/$ev"; do
            head -1 "$d/format" > /dev/null 2>&1 || anomaly "spurious ENOENT" "$d just created"
        done
        echo "-:synthetic/$ev" >> "$root/dynamic_events" 2>/dev/null || { anomaly "delete failed" "$ev"; continue; }
        for d in "$root/events/synthetic/$ev" "$inst/events/synthetic/$ev"; do
            [ -e "$d" ] && anomaly "stale hit" "$d just deleted"
        done
        count ops 6
    done
}

reader() {    # ls and cat the churning event: either whole and well formed, or gone
    local d=$1 out
    while [ $SECONDS -lt $end ]; do
        if out=$(cat "$d/format" 2>&1); then
            case $out in "name: $ev"*"print fmt: "*) ;; *) anomaly "torn format" "$d" ;; esac
        else
            gone_msg "$out" || anomaly "read error" "$out"
        fi
        out=$(ls "$d" 2>&1 >/dev/null) || gone_msg "$out" || anomaly "ls error" "$out"
        count ops 2
    done
}

enabler() {   # enable writes in our instance (one event per enabler), racing with everything else
    local f="$inst/events/sched/$1/enable"
    while [ $SECONDS -lt $end ]; do
        for v in 1 0; do echo $v > "$f" 2>/dev/null || anomaly "enable write failed" "$f"; done
        [ "$(cat "$f")" = 0 ] || anomaly "enable readback" "$f"
        count ops 3
    done
}

mapfile -t sched < <(find "$inst/events/sched" -mindepth 1 -maxdepth 1 -type d -printf '%f\n')
[ $dyn = 1 ] && churner &
for i in $(seq "$threads"); do
    if [ $dyn = 1 ]; then
        if [ $((i % 2)) = 0 ]; then reader "$root/events/synthetic/$ev" & else reader "$inst/events/synthetic/$ev" & fi
    fi
    enabler "${sched[i % ${#sched[@]}]}" &
done
wait
rmdir "$inst" || anomaly "instance left behind" "$inst"
report churn
