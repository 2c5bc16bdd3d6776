# The hold, for waiters' estimates and the lab's status: seconds held (from
# the key file's time, written when the lock was taken), when it ended, the
# holder (the key file's owner) and the key. Recorded only when the holder
# is us: a forced release of another's lock is not our hold.
mq_ku=$(stat --format='%Y %U' -- @keyfile@ 2>/dev/null)
if [ "${mq_ku#* }" = "$mq_me" ]; then
  mq_first @keyfile@
  mq_t=$(date +%s)
  mq_history @system@ holds "$((mq_t - ${mq_ku%% *})) $mq_t $mq_me $mq_x"
fi
# rm's own status: the lock file may well exist again at once, taken by a
# waiter.
rm -f @keyfile@; sync; rm -f @lock@ || exit @still_there@
exit 0
