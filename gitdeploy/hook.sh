#!/bin/sh
# Installed by baton as the pre-receive and proc-receive hook of every app
# repository. baton rewrites it whenever it differs, so do not edit it.
#
# The hook hands the push to the baton server that runs this receive-pack,
# over the per-push Unix socket in BATON_GIT_SOCKET, and obeys the answer,
# one instruction per line:
#   say TEXT   show TEXT to the pusher (git prints it as "remote: TEXT")
#   pkt TEXT   write TEXT as a pkt-line on stdout (proc-receive protocol)
#   flush      write a flush-pkt on stdout
#   exit N     the hook's exit status; anything but 0 refuses the push
LC_ALL=C
export LC_ALL
hook=${0##*/}
if [ -z "${BATON_GIT_SOCKET:-}" ]; then
	echo "baton: this repository takes pushes only through baton's /git/ endpoint (git push http://BATON/git/APP.git)" >&2
	exit 1
fi
set -- --data-urlencode "hook=$hook" --data-urlencode "quarantine=${GIT_QUARANTINE_PATH:-}"
i=0
while [ "$i" -lt "${GIT_PUSH_OPTION_COUNT:-0}" ]; do
	eval "opt=\${GIT_PUSH_OPTION_$i}"
	set -- "$@" --data-urlencode "option=$opt"
	i=$((i + 1))
done
if [ "$hook" = pre-receive ]; then
	set -- "$@" --data-urlencode "refs@-"
else
	# git sends proc-receive its commands and closes stdin only after it
	# has read the report; baton knows the commands from pre-receive, so
	# they are only drained (an asynchronous list's stdin is /dev/null
	# unless redirected explicitly).
	exec 3<&0
	cat <&3 >/dev/null 2>&1 &
fi
curl -sS -N --unix-socket "$BATON_GIT_SOCKET" "$@" http://baton/hook | {
	status=
	while IFS= read -r line; do
		case $line in
		"say "*) printf '%s\n' "${line#say }" >&2 ;;
		"pkt "*)
			p=${line#pkt }
			printf '%04x%s\n' $((${#p} + 5)) "$p"
			;;
		flush) printf 0000 ;;
		"exit "*) status=${line#exit } ;;
		esac
	done
	if [ -z "$status" ]; then
		echo "baton: the baton server gave no answer to this push's $hook hook; the push is refused" >&2
		status=1
	fi
	exit "$status"
}
