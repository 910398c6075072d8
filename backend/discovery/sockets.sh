# Porthole: list the listening TCP sockets of this host, with their processes.
# POSIX sh only (runs under dash and busybox sh); always exits 0.
# Output format "porthole-sockets v1", one record per line, tag first
# (parsed by listing.go, which documents every record):
#   T now  U uid user  H home  M arch  S source  K btime hz
#   L family hexaddr:hexport uid inode        (Linux, from /proc/net/tcp{,6})
#   F pid inode                               (Linux, process pid holds socket inode)
#   P pid<TAB>start<TAB>comm<TAB>cwd<TAB>cmdline
#   O lsof-line  Q ps-line  W lsof-cwd-line  N netstat-line
#   J name<TAB>json                           (a Jupyter runtime file)
#   X kind<TAB>path                           (a Unix socket the user may use)
#   E                                         (end)
# It only reads: it creates no file or directory and runs no jupyter.
# Arguments, if any, are extra directories whose sockets are listed too.
LC_ALL=C
export LC_ALL
echo 'porthole-sockets v1'
echo "T $(date +%s 2>/dev/null)"
echo "U $(id -u 2>/dev/null) $(id -un 2>/dev/null)"
printf 'H %s\n' "$HOME"
echo "M $(uname -m 2>/dev/null)"

# Unix sockets of well-known services, the user's own sockets in their
# runtime directory and those in the directories given as arguments: only
# sockets the login may use (test -S, -r and -w; nothing is connected to).
# At most 64 lines. First, while "$@" still holds the arguments.
rt=${XDG_RUNTIME_DIR:-}
if [ -z "$rt" ] && [ -d "/run/user/$(id -u 2>/dev/null)" ]; then
	rt=/run/user/$(id -u 2>/dev/null)
fi
xseen=' '
xn=0
xsock() {
	[ "$xn" -lt 64 ] || return 0
	[ -S "$2" ] && [ -r "$2" ] && [ -w "$2" ] || return 0
	case $xseen in *" $2 "*) return 0 ;; esac
	xseen="$xseen$2 "
	xn=$((xn + 1))
	printf 'X %s\t%s\n' "$1" "$2"
}
xkind() {
	case ${1##*/} in
	docker.sock) echo docker ;;
	.s.PGSQL.*) echo postgres ;;
	mysqld.sock | mysql.sock) echo mysql ;;
	*) echo socket ;;
	esac
}
for f in /var/run/docker.sock /run/docker.sock ${rt:+"$rt/docker.sock"}; do xsock docker "$f"; done
for f in /var/run/postgresql/.s.PGSQL.* /run/postgresql/.s.PGSQL.* /tmp/.s.PGSQL.*; do xsock postgres "$f"; done
for f in /var/run/mysqld/mysqld.sock /run/mysqld/mysqld.sock /tmp/mysql.sock; do xsock mysql "$f"; done
for d in ${rt:+"$rt"} "$@"; do
	[ -d "$d" ] || continue
	for f in "$d"/* "$d"/.s.PGSQL.*; do
		[ -O "$f" ] || [ "$d" != "$rt" ] || continue
		xsock "$(xkind "$f")" "$f"
	done
done

if [ -r /proc/net/tcp ]; then
	echo 'S proc'
	hz=$(getconf CLK_TCK 2>/dev/null)
	[ -n "$hz" ] || hz=100
	btime=
	while read -r k v rest; do
		if [ "$k" = btime ]; then
			btime=$v
			break
		fi
	done </proc/stat
	echo "K $btime $hz"

	# Listening sockets (state 0A). The header line has st="st" and is skipped.
	inodes=' '
	for f in /proc/net/tcp /proc/net/tcp6; do
		[ -r "$f" ] || continue
		fam=4
		[ "$f" = /proc/net/tcp6 ] && fam=6
		while read -r sl laddr raddr st queues timer retr uid tmo inode rest; do
			[ "$st" = 0A ] || continue
			echo "L $fam $laddr $uid $inode"
			inodes="$inodes$inode "
		done <"$f"
	done

	# Which of the processes we may look at hold those sockets: one ls for all
	# of them (ls prints "DIR:" headers and "N -> socket:[INODE]" entries).
	if [ "$inodes" != ' ' ]; then
		owners=$(ls -l /proc/[0-9]*/fd 2>/dev/null | while IFS= read -r line; do
			case $line in
			/proc/*/fd:)
				pid=${line#/proc/}
				pid=${pid%/fd:}
				;;
			*'-> socket:['*']')
				ino=${line##*socket:[}
				ino=${ino%]}
				case $inodes in
				*" $ino "*) echo "F $pid $ino" ;;
				esac
				;;
			esac
		done)
		[ -n "$owners" ] && printf '%s\n' "$owners"

		seen=' '
		set -f
		for pid in $(printf '%s\n' "$owners" | while read -r tag p ino; do echo "$p"; done); do
			case $seen in *" $pid "*) continue ;; esac
			seen="$seen$pid "
			[ -r "/proc/$pid/stat" ] || continue
			stat=
			read -r stat <"/proc/$pid/stat" || [ -n "$stat" ] || continue
			comm=${stat#*(}
			comm=${comm%)*}
			# Field 22 (starttime, clock ticks since boot); "pid (comm) " stripped
			# first because comm may hold spaces and parentheses.
			set -- ${stat##*) }
			start=${20}
			if [ -z "$btime" ] || [ -z "$start" ]; then
				start="@$(stat -c %Y "/proc/$pid" 2>/dev/null)"
			fi
			cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null)
			cmd=$(tr '\000\t\n' '   ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-2048)
			printf 'P %s\t%s\t%s\t%s\t%s\n' "$pid" "$start" "$comm" "$cwd" "$cmd"
		done
		set +f
	fi
elif command -v lsof >/dev/null 2>&1; then
	echo 'S lsof'
	out=$(lsof -nP -iTCP -sTCP:LISTEN 2>/dev/null)
	pids=
	if [ -n "$out" ]; then
		printf '%s\n' "$out" | while IFS= read -r line; do printf 'O %s\n' "$line"; done
		pids=$(printf '%s\n' "$out" | while read -r c p rest; do
			case $p in *[!0-9]* | '') ;; *) echo "$p" ;; esac
		done | sort -un | tr '\n' ',')
		pids=${pids%,}
	fi
	if [ -n "$pids" ]; then
		psout=$(ps -o pid= -o etime= -o command= -p "$pids" 2>/dev/null)
		if [ -n "$psout" ]; then
			printf '%s\n' "$psout" | while IFS= read -r line; do printf 'Q %s\n' "$line"; done
		else
			# busybox ps: no -p, no etime.
			ps -o pid= -o args= 2>/dev/null | while read -r p args; do
				case ",$pids," in *",$p,"*) printf 'Q %s - %s\n' "$p" "$args" ;; esac
			done
		fi
		lsof -a -d cwd -p "$pids" -Fpn 2>/dev/null | while IFS= read -r line; do
			printf 'W %s\n' "$line"
		done
	fi
elif command -v netstat >/dev/null 2>&1; then
	echo 'S netstat'
	netstat -an 2>/dev/null | while IFS= read -r line; do printf 'N %s\n' "$line"; done
else
	echo 'S none'
fi

# Jupyter servers' runtime files (jpserver-PID.json, nbserver-PID.json).
# jupyter_core's runtime directory is $JUPYTER_RUNTIME_DIR, else
# $JUPYTER_DATA_DIR/runtime, else ${XDG_DATA_HOME:-~/.local/share}/jupyter/runtime
# (~/Library/Jupyter/runtime on macOS, ~/Library/Application Support/jupyter/runtime
# with JUPYTER_PLATFORM_DIRS=1), $XDG_RUNTIME_DIR/jupyter for jupyter_core
# 4.0 and 4.1. All of them are read: a server may have been started with
# another environment than this non-interactive one. One line per file:
# newlines, CRs and tabs (JSON whitespace) become spaces. Whether a file's
# server is alive and holds its port is decided by the reader against the
# sockets above, never here.
set +f
jseen=' '
for d in "${JUPYTER_RUNTIME_DIR:-}" "${JUPYTER_DATA_DIR:+$JUPYTER_DATA_DIR/runtime}" \
	"${XDG_DATA_HOME:-$HOME/.local/share}/jupyter/runtime" "$HOME/.local/share/jupyter/runtime" \
	"$HOME/Library/Jupyter/runtime" "$HOME/Library/Application Support/jupyter/runtime" \
	"${XDG_RUNTIME_DIR:+$XDG_RUNTIME_DIR/jupyter}"; do
	[ -n "$d" ] && [ -d "$d" ] || continue
	case $jseen in *" $d "*) continue ;; esac
	jseen="$jseen$d "
	for f in "$d"/jpserver-*.json "$d"/nbserver-*.json; do
		[ -f "$f" ] && [ -r "$f" ] || continue
		printf 'J %s\t%s\n' "${f##*/}" "$(tr '\n\r\t' '   ' <"$f" 2>/dev/null | cut -c1-65536)"
	done
done
echo 'E'
exit 0
