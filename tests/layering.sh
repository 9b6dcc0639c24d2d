#!/bin/sh
# Checks the layering of core/: the folders' includes of each other form no
# cycle (tsort finds loops), and no chat platform is named in core/ (the
# platforms' rules live in their connectors). Usage: layering.sh SRCDIR
set -u
src=${1:?usage: layering.sh SRCDIR}
cd "$src/core" || exit 2
fail=0
# One "from to" pair per include of another core folder's header.
pairs=$(grep -o '^#include "[a-z_]*/' -r --include='*.c' --include='*.h' . |
	sed 's|^\./\([a-z_]*\)/[^:]*:#include "\([a-z_]*\)/|\1 \2|' |
	awk '$1 != $2' | sort -u)
n=$(printf '%s\n' "$pairs" | grep -c .)
if [ "$n" -lt 20 ]; then
	echo "FAIL: only $n include edges between core folders found; the scan is broken"
	fail=1
fi
if ! printf '%s\n' "$pairs" | tsort >/dev/null 2>/tmp/layering.$$; then
	echo "FAIL: include cycle between core folders:"
	cat /tmp/layering.$$
	fail=1
fi
rm -f /tmp/layering.$$
echo "core folders: $n include edges between folders, no cycle" >&2
names=$(grep -rniE 'slack|teams|discord' --include='*.c' --include='*.h' \
	--include='meson.build' . || true)
if [ -n "$names" ]; then
	echo "FAIL: core/ names a chat platform (its rules belong in the connector):"
	printf '%s\n' "$names"
	fail=1
fi
[ "$fail" -eq 0 ] && echo "ok"
exit "$fail"
