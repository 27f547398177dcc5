#!/usr/bin/env bash
# Instance churn (eventfs-history §4 scenario 7): one loop mkdir/rmdirs instances while readers
# walk them (`ls -R`, `cat id`) and a writer toggles an enable file inside them. Every call must
# succeed or fail only because the instance is gone (ENOENT; ENODEV/EINVAL on something opened
# just before the rmdir; EBUSY from rmdir while a file is open, retried). Anything else, or an
# instance left behind, is an anomaly. Writes only inside `instances/stress_inst_$$_*`, so it is
# safe on a kernel tracefs.
#   instances.sh TRACEFS_ROOT [--seconds S] [--threads N]
set -u
. "$(dirname "$0")/common.sh"

base="$root/instances/stress_inst_$$"

cycler() {
    local k=0 i err
    while [ $SECONDS -lt $end ]; do
        i="${base}_$((k % 2))"; k=$((k + 1))
        err=$(mkdir "$i" 2>&1) || { anomaly "mkdir failed" "$err"; continue; }
        cat "$i/events/sched/sched_switch/id" > /dev/null 2>&1 || anomaly "fresh instance unreadable" "$i"
        until err=$(rmdir "$i" 2>&1); do
            case $err in *"busy"*) sleep 0.01 ;; *) anomaly "rmdir failed" "$err"; break ;; esac
        done
        count ops 3
    done
}

walker() {
    local n=$1 out i
    while [ $SECONDS -lt $end ]; do
        i="${base}_$((n % 2))"
        out=$(ls -R "$i/events/sched" 2>&1 >/dev/null) || gone_msg "$out" || anomaly "ls -R error" "$out"
        out=$(cat "$i/events/sched/sched_switch/id" 2>&1 >/dev/null) || gone_msg "$out" || anomaly "cat error" "$out"
        out=$(ls "$root/instances" 2>&1 >/dev/null) || anomaly "ls instances/ error" "$out"
        count ops 3
    done
}

writer() {
    local out
    while [ $SECONDS -lt $end ]; do
        for v in 1 0; do
            out=$( (echo $v > "${base}_0/events/sched/sched_switch/enable") 2>&1) || gone_msg "$out" || anomaly "enable write error" "$out"
        done
        count ops 2
    done
}

cycler &
writer &
for n in $(seq "$threads"); do walker "$n" & done
wait
for i in "${base}_0" "${base}_1"; do
    [ -e "$i" ] && { anomaly "instance left behind" "$i"; rmdir "$i"; }
done
report instances
