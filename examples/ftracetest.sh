#!/bin/sh
# Run the kernel's own ftrace selftests (ftracetest) against a utracefs clone.
#
#   examples/ftracetest.sh [-a "DAEMON ARGS"] [-l LOGDIR] [TEST_OR_DIR...]
#
# TEST_OR_DIR are paths relative to ftracetest's folder (default: test.d/00basic test.d/event
# test.d/instances test.d/dynevent test.d/filter test.d/trigger). The clone is mounted at
# /sys/kernel/tracing inside a private mount namespace in which every other tracefs mount is
# unmounted first, so ftracetest (which takes the first `tracefs` line of /proc/mounts) can only
# reach the clone; the host's tracing state is never touched. Needs root.
#
# The selftests come from Debian's linux-source-6.12 (bookworm-backports on Debian 12), which this
# script installs when missing and unpacks once into target/ftracetest. FTRACETEST_DIR overrides
# where ftracetest lives; UTRACEFS overrides the daemon binary (default: a release build).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
daemon_args=""
logdir="-"
while getopts a:l: opt; do
    case $opt in
    a) daemon_args=$OPTARG ;;
    l) logdir=$OPTARG ;;
    *) echo "usage: $0 [-a DAEMON_ARGS] [-l LOGDIR] [TEST_OR_DIR...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || set -- test.d/00basic test.d/event test.d/instances test.d/dynevent \
    test.d/filter test.d/trigger

[ "$(id -u)" = 0 ] || { echo "ftracetest.sh: ftracetest needs root" >&2; exit 1; }

source_tar=/usr/src/linux-source-6.12.tar.xz
ftrace_dir=${FTRACETEST_DIR:-$root/target/ftracetest/tools/testing/selftests/ftrace}
if [ ! -x "$ftrace_dir/ftracetest" ]; then
    if [ ! -f "$source_tar" ]; then
        if ! apt-cache policy linux-source-6.12 2>/dev/null | grep -q Candidate:.[0-9]; then
            . /etc/os-release
            echo "deb http://deb.debian.org/debian ${VERSION_CODENAME}-backports main" \
                >/etc/apt/sources.list.d/utracefs-backports.list
            apt-get update -qq
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-source-6.12 >/dev/null
    fi
    mkdir -p "$root/target/ftracetest"
    tar -xJf "$source_tar" -C "$root/target/ftracetest" --strip-components=1 \
        linux-source-6.12/tools/testing/selftests/ftrace
fi

# The inter-event tests make sched_waking/sched_switch records with ping.
command -v ping >/dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iputils-ping >/dev/null

bin=${UTRACEFS:-}
if [ -z "$bin" ]; then
    cargo build --release --quiet --manifest-path "$root/Cargo.toml"
    bin=${CARGO_TARGET_DIR:-$root/target}/release/utracefs
fi

export bin daemon_args logdir ftrace_dir
exec unshare -m --propagation private sh -c '
    set -u
    # Only the clone may answer: hide every tracefs (kernel or FUSE) this namespace inherited.
    awk "\$3 == \"tracefs\" || \$3 == \"fuse.tracefs\" { print \$2 }" /proc/self/mounts |
        sort -r | while read -r m; do umount -l "$m"; done
    $bin $daemon_args /sys/kernel/tracing 2>/tmp/utracefs-ftracetest.log &
    daemon=$!
    i=0
    until grep -q " /sys/kernel/tracing fuse.tracefs " /proc/self/mounts; do
        i=$((i + 1))
        if [ $i -gt 100 ] || ! kill -0 $daemon 2>/dev/null; then
            echo "ftracetest.sh: the clone did not mount; see /tmp/utracefs-ftracetest.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    cd "$ftrace_dir"
    rc=0
    ./ftracetest -l "$logdir" "$@" || rc=$?
    kill -INT $daemon
    wait $daemon
    exit $rc
' ftracetest "$@"
