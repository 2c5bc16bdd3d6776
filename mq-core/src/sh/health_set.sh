# An admin's change of a system's health: the file replaced whole (a
# rename), the change appended to this user's own log (BASE/health/logs/
# USER) when the state changed. Nothing changes unless both can be written.
( mq_in "$b/health" 777 && mq_in "$b/health/logs" && mq_own "$mq_me" ) || {
  echo "$b/health/logs/$mq_me: not a directory and file of $mq_me's that mq can write (a link? see mq status)" >&2
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
) || { echo "$b/health/"@system_file@": could not be replaced" >&2; exit 1; }
[ "$mq_from" = @to@ ] && exit 0
( mq_in "$b/health/logs" &&
  mq_append "$mq_me" "$(printf '%s\t%s\t%s\t%s\t%s\t%s\t%s' @at@ @system@ "$mq_from" @to@ @by@ @reason@ '')" ) ||
  { echo "$b/health/logs/$mq_me: could not be appended to" >&2; exit 1; }
