#!/usr/bin/env bash
# What a device `run` call takes along, against its 64 MiB limit: the checkout's working tree (tracked
# files plus untracked files git does not ignore, as they are on disk now) plus the carried kit
# (cuda/target/device-kit). Fails when the sum is over LIMIT_MIB (60: 4 MiB margin under 64).
#
# usage: cuda/device-travel-size.sh [kit dir]     env: LIMIT_MIB (60)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
kit=${1:-$here/target/device-kit}
limit=$(( ${LIMIT_MIB:-60} * 1048576 ))

cd "$root"
# sizes as stat sees them (a link counts as a link); a tracked file deleted on disk travels as nothing
checkout=$(git ls-files -z --cached --others --exclude-standard | sort -zu \
  | { xargs -0 -r stat --printf '%s\n' -- 2>/dev/null || true; } | awk '{ s += $1 } END { print s + 0 }')
if [[ -d shared ]] && [[ -z $(git ls-files shared | head -1) ]]; then # an untracked shared/ travels too
  checkout=$(( checkout + $(du -sb shared | cut -f1) ))
fi
kit_bytes=0
[[ -d "$kit" ]] && kit_bytes=$(du -sb "$kit" | cut -f1)
total=$(( checkout + kit_bytes ))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
printf '  checkout (tracked + untracked, not ignored) %12d bytes  %s\n' "$checkout" "$(mib "$checkout")"
printf '  kit %-40s %12d bytes  %s\n' "${kit#"$root"/}" "$kit_bytes" "$(mib "$kit_bytes")"
printf '  travels                                     %12d bytes  %s (limit %s)\n' "$total" "$(mib "$total")" "$(mib "$limit")"
if (( total > limit )); then
  echo "error: a device call would carry $(mib "$total"), over $(mib "$limit"): leave models out (TYPES_MODELS) or shrink the checkout" >&2
  exit 1
fi
