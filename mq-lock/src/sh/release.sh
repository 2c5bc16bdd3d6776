# How long the board was held (from the key file's time, written when it was
# taken), kept for waiters' estimates: the last 20 of BASE/queue/SYSTEM/.holds.
mq_ks=$(stat --format=%Y -- @keyfile@ 2>/dev/null)
if [ -n "$mq_ks" ]; then
  (
    umask 0 && mkdir -p -- @queue_dir@ && echo $(( $(date +%s) - mq_ks )) >> @queue_dir@/.holds &&
      if [ "$(wc -l < @queue_dir@/.holds)" -gt 40 ]; then
        tail -n 20 -- @queue_dir@/.holds > @queue_dir@/.holds.$$ && mv -f -- @queue_dir@/.holds.$$ @queue_dir@/.holds
      fi
  ) 2>/dev/null
fi
# rm's own status: the lock file may well exist again at once, taken by a
# waiter.
rm -f @keyfile@; sync; rm -f @lock@ || exit @still_there@
exit 0
