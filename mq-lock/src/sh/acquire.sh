@precheck@me=$mq_me
@save_umask@@own_check@left=@attempts@
r=0
mq_sys=
mq_last=
# A hangup, ^C or cancel (the client gone) takes this wait out of the line
# before it ends; it is heard between attempts. Once lockfile succeeds it is
# ignored until the key is written (see below), as before.
mq_hup=
trap 'mq_hup=1' HUP INT TERM
while :; do
  [ "$left" -gt 0 ] && left=$((left - 1))
  # In line: mq waiters are served in order (old clients may overtake). A
  # board is tried only by the waiter nobody is ahead of in its line.
  mq_places
@members@  [ -n "$mq_sys" ] && break
  [ -n "$mq_tn" ] || { mq_join; mq_places; }
  mq_holder
  mq_tell
  @queue_timeout@
  [ -n "$mq_hup" ] && { mq_leave; exit 129; }
  [ "$left" -eq 0 ] && { mq_leave; exit @gave_up@; }
  sleep @retry@
  [ -n "$mq_hup" ] && { mq_leave; exit 129; }
done
# How long it waited in line, for the lab's status.
if [ -n "$mq_tn" ]; then
  mq_t=$(date +%s)
  mq_history "$mq_sys" waits "$((mq_t - ${mq_now%.*})) $mq_t $mq_me"
fi
mq_leave
echo "@acquired_mark@$mq_sys"
@then@
@hold@# A safety net: a hand-over's commands end the script themselves.
# shellcheck disable=SC2317
exit 0
