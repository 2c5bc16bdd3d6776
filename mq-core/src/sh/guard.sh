# The guard of a run: $1 is the shell running the board, $2 its process
# group (the runner's too), $3 the run's directory, $4 the process keeping
# the lock fresh (if any). If that shell dies before its finish (the client
# went: a hangup ends it, then the runner), the guard waits until the
# runner has ended too (zombies left to a parent that never reaps them do
# not count), then cleans up as the finish would. The finish stops it.
# It does not power the board off: the runner had the same hangup as the
# shell (PROTOCOL.md: the remote side dies with the connection) and powers
# off itself, and by now the client may have released the board and the
# next run begun on it, which a --shutdown would stop. A runner killed by
# a signal while its shell lives is the finish's to power off.
trap '' HUP INT TERM QUIT
mq_d=$3
while kill -0 "$1" 2>/dev/null; do sleep 1; done
[ -n "$4" ] && kill "$4" 2>/dev/null
while :; do
  mq_busy=
  for mq_p in $(pgrep -g "$2"); do
    [ "$mq_p" = "$$" ] && continue
    mq_s=$(sed 's/.*) //' "/proc/$mq_p/stat" 2>/dev/null) || continue
    case $mq_s in Z*|X*|'') ;; *) mq_busy=1 ;; esac
  done
  [ -z "$mq_busy" ] && break
  sleep 1
done
@cleanup@
