# Porthole: find the running Jupyter servers and their tokens. POSIX sh.
# Output "porthole-jupyter v1": sections started by "#list server",
# "#list notebook", "#file NAME" (a runtime file), then "#end". Each section
# holds JSON objects (one per line from `jupyter … list --json`, one
# possibly multi-line object from a runtime file).
# A `jupyter` that hangs (a broken environment, a version-manager shim
# waiting on a lock) is cut off after ${PORTHOLE_JUPYTER_TIMEOUT:-4} s where
# `timeout` exists; the runtime files are read either way.
echo 'porthole-jupyter v1'
limit=${PORTHOLE_JUPYTER_TIMEOUT:-4}
bounded() {
	if command -v timeout >/dev/null 2>&1; then
		timeout "$limit" "$@"
	else
		"$@"
	fi
}
if command -v jupyter >/dev/null 2>&1; then
	echo '#list server'
	bounded jupyter server list --json 2>/dev/null </dev/null
	echo
	echo '#list notebook'
	bounded jupyter notebook list --json 2>/dev/null </dev/null
	echo
fi
seen=' '
for d in "${JUPYTER_RUNTIME_DIR:-}" "${XDG_DATA_HOME:-$HOME/.local/share}/jupyter/runtime" \
	"$HOME/.local/share/jupyter/runtime" "$HOME/Library/Jupyter/runtime"; do
	[ -n "$d" ] && [ -d "$d" ] || continue
	case $seen in *" $d "*) continue ;; esac
	seen="$seen$d "
	for f in "$d"/jpserver-*.json "$d"/nbserver-*.json; do
		[ -r "$f" ] || continue
		printf '#file %s\n' "${f##*/}"
		cat "$f" 2>/dev/null
		echo
	done
done
echo '#end'
exit 0
