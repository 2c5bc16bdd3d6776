# An admin's change of a system's health: the file replaced whole (a
# rename), the change appended to this user's own log (BASE/health/logs/
# USER) when the state changed, under the health mutex (so that each logged
# change starts from the state the one before left). Nothing changes unless
# both can be written.
@mutex_fn@
( mq_in "$b/health" 777 && mq_in "$b/health/logs" && mq_own "$mq_me" ) || {
  echo "$b/health/logs/$mq_me: not a directory and file of $mq_me's that mq can write (a link? see mq status)" >&2
  exit 1
}
mq_hlock @system_file@ || {
  echo "$b/health/"@system_file@": another change of its health held it for 30 s; nothing changed" >&2
  exit 1
}
mq_from=$(
  mq_in "$b/health" 777 || exit 1
  mq_x=good
  if [ -e @system_file@ ] || [ -L @system_file@ ]; then
    mq_get "$(mq_read @system_file@ 4096)" state || mq_x=unknown
    case $mq_x in good|unknown|bad|maintenance|retired) ;; *) mq_x=unknown ;; esac
  fi
  printf '%s' @content@ | mq_replace @system_file@ && printf '%s' "$mq_x"
) || { mq_hunlock; echo "$b/health/"@system_file@": could not be replaced" >&2; exit 1; }
if [ "$mq_from" != @to@ ]; then
  ( mq_in "$b/health/logs" &&
    mq_append "$mq_me" "$(printf '%s\t%s\t%s\t%s\t%s\t%s\t%s' @at@ @system@ "$mq_from" @to@ @by@ @reason@ '')" ) ||
    { mq_hunlock; echo "$b/health/logs/$mq_me: could not be appended to" >&2; exit 1; }
fi
mq_hunlock
