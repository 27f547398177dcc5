# Shared by the stress scripts: argument parsing, counters, the report. Source it; do not run it.
# Usage of every script: <script> TRACEFS_ROOT [--seconds S] [--threads N]

# --help anywhere: the script's header comment (what it does, its usage), and nothing else.
for arg in "$@"; do
    case $arg in
        -h|--help) sed -n '1,/^\([^#]\|$\)/{/^#!/d;/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
    esac
done
root=${1:?usage: $0 TRACEFS_ROOT [--seconds S] [--threads N]}
shift
seconds=10 threads=4
while [ $# -gt 0 ]; do
    case $1 in
        --seconds) seconds=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -d "$root/events" ] && [ -d "$root/instances" ] || { echo "$root: not a tracefs root" >&2; exit 2; }
# A kernel tracefs reports "tracefs"; utracefs reports a FUSE type.
fstype=$(stat -f -c %T "$root")
if [ "$fstype" = tracefs ]; then kernel=1; else kernel=0; fi
work=$(mktemp -d /tmp/stress.XXXXXX)
end=$((SECONDS + seconds))

# count KIND [N]: N (default 1) operations (KIND "ops") or anomalies of KIND, per worker ($BASHPID).
count() { echo "$1	${2:-1}" >> "$work/count.$BASHPID"; }
# anomaly KIND DETAIL: count it and keep the first few details for the report.
anomaly() { count "$1"; echo "$1: $2" >> "$work/details"; }
# An error message that only says the name is gone (ENOENT) or its handle died (ENODEV, EINVAL).
gone_msg() { case $1 in *"No such file"*|*"No such device"*|*"Invalid argument"*) return 0 ;; esac; return 1; }

# report NAME: prints ops/s and anomalies by kind; exits 1 if there were any.
report() {
    local elapsed=$((seconds > 0 ? seconds : 1))
    cat "$work"/count.* 2>/dev/null | awk -F'\t' '{n[$1] += $2} END {for (k in n) print n[k] "\t" k}' > "$work/summary"
    local ops; ops=$(awk -F'\t' '$2 == "ops" {print $1}' "$work/summary"); ops=${ops:-0}
    local bad; bad=$(awk -F'\t' '$2 != "ops" {n += $1} END {print n + 0}' "$work/summary")
    echo "$1 on $root ($fstype, $threads threads, ${seconds}s): $ops ops, $((ops / elapsed)) ops/s, $bad anomalies"
    awk -F'\t' '$2 != "ops" {print "  anomaly " $2 ": " $1}' "$work/summary"
    [ -s "$work/details" ] && head -5 "$work/details" | sed 's/^/  e.g. /'
    rm -rf "$work"
    [ "$bad" -eq 0 ]
}
