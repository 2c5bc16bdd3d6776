# mq_reclaim LOCK: lockfile's "-l N" for a lock whose holder wrote a reclaim
# timeout N into it; nothing otherwise.
mq_reclaim() {
  mq_c=$(cat -- "$1" 2>/dev/null)
  case "$mq_c" in ''|*[!0-9]*|0) ;; *) echo "-l $mq_c" ;; esac
}
# mq_holder: the holder of the board where our place is best (the first of
# mq_at with the fewest ahead), printed when it changes.
mq_holder() {
  mq_rest=${mq_at#/} mq_few='' mq_hs=''
  while [ -n "$mq_rest" ]; do
    mq_p=${mq_rest%%/*} mq_rest=${mq_rest#*/}
    if [ -z "$mq_few" ] || [ "${mq_p##*:}" -lt "$mq_few" ]; then
      mq_few=${mq_p##*:} mq_hs=${mq_p%:*}
    fi
  done
  mq_o=$(stat --format=%U -- "$b/$mq_hs.lock" 2>/dev/null)
  [ -n "$mq_o" ] || return 0
  mq_h="$mq_o $(stat --format=%y -- "$b/$mq_hs.lock" 2>/dev/null)"
  [ "$mq_h" = "$mq_last" ] || printf '@holder_mark@%s\n' "$mq_h"
  mq_last=$mq_h
}
