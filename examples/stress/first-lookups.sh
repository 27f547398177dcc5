#!/usr/bin/env bash
# Concurrent first lookups (eventfs-history §4 scenario 1): drop the kernel's dentry cache, then
# N processes stat the same event directories at once. Any failure is an anomaly (the classic
# bug is a spurious ENOENT when two lookups race on a fresh directory). Reads only: safe on a
# kernel's tracefs.
#   first-lookups.sh TRACEFS_ROOT [--seconds S] [--threads N]
set -u
. "$(dirname "$0")/common.sh"

# 64 event directories spread over the tree (same list for every process), plus their files.
mapfile -t dirs < <(find "$root/events" -mindepth 2 -maxdepth 2 -type d | awk 'NR % 30 == 1' | head -64)
mapfile -t files < <(for d in "${dirs[@]}"; do for f in format id; do [ -e "$d/$f" ] && echo "$d/$f"; done; done)
[ ${#dirs[@]} -gt 0 ] || { echo "no event directories under $root/events" >&2; exit 2; }
can_drop=1
[ -w /proc/sys/vm/drop_caches ] || { can_drop=0; echo "note: not root, caches are not dropped" >&2; }

rounds=0
while [ $SECONDS -lt $end ]; do
    [ $can_drop = 1 ] && echo 2 > /proc/sys/vm/drop_caches
    for _ in $(seq "$threads"); do
        (
            # One stat per name: a failure names the path and the errno text.
            if ! err=$(stat -c %i "${dirs[@]}" "${files[@]}" 2>&1 >/dev/null); then
                while read -r line; do
                    case $line in
                        *"No such file"*) anomaly "spurious ENOENT" "$line" ;;
                        *) anomaly "other error" "$line" ;;
                    esac
                done <<< "$err"
            fi
            count ops $(( ${#dirs[@]} + ${#files[@]} ))
        ) &
    done
    wait
    rounds=$((rounds + 1))
done
echo "$rounds rounds of $threads processes x $(( ${#dirs[@]} + ${#files[@]} )) names"
report first-lookups
