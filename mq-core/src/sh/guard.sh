# The guard of a run: $1 is the shell running the board, $2 its process
# group (the runner's too), $3 the run's directory, $4 the process keeping
# the lock fresh (if any). If that shell dies before its finish (the client
# went: a hangup ends it, then the runner), the guard waits until the
# runner has ended too, then cleans up as the finish would. The finish
# stops it.
trap '' HUP INT TERM QUIT
mq_d=$3
while kill -0 "$1" 2>/dev/null; do sleep 1; done
[ -n "$4" ] && kill "$4" 2>/dev/null
while :; do
  mq_busy=
  for mq_p in $(pgrep -g "$2"); do
    [ "$mq_p" = "$$" ] || mq_busy=1
  done
  [ -z "$mq_busy" ] && break
  sleep 1
done
@cleanup@
