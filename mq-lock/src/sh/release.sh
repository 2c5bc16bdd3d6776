# The hold, for waiters' estimates and the lab's status: seconds held (from
# the key file's time, written when the lock was taken), when it ended, the
# holder (the key file's owner) and the key.
mq_ku=$(stat --format='%Y %U' -- @keyfile@ 2>/dev/null)
if [ -n "$mq_ku" ]; then
  mq_k=; { IFS= read -r mq_k < @keyfile@; } 2>/dev/null
  mq_t=$(date +%s)
  mq_history @queue_dir@/.holds "$((mq_t - ${mq_ku%% *})) $mq_t ${mq_ku#* } $mq_k"
fi
# rm's own status: the lock file may well exist again at once, taken by a
# waiter.
rm -f @keyfile@; sync; rm -f @lock@ || exit @still_there@
exit 0
