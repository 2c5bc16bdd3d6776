# The board's health, under its lock: a run that passed resets the count of
# infrastructure failures in a row; an infrastructure failure adds one and,
# at the lab's threshold (BASE/health/threshold, 3 unless set), moves a good
# board to unknown, and one more to bad. Test failures change nothing. Only
# a good or unknown board changes by itself.
#
# The run is sorted by what its console showed (the runner's log), not by
# the runner's status, exactly as mq_core::health::classify sorts it: the
# first line with the completion or the error text; a runner killed by a
# signal or a board left on ([[Power off failed]]); the lab's own failure markers or no output; mq-lab's statuses 5
# and 6; status 0; then whether the image started. A text is an extended
# regular expression or, failing that, the same text literally.
# shellcheck disable=SC2317
mq_seen() {
  [ -n "$1" ] || return 1
  mq_x=$( { grep -nE -m1 -e "$1" -- @log@ || grep -nF -m1 -e "$1" -- @log@; } 2>/dev/null | head -n 1)
  mq_x=${mq_x%%:*}
  [ -n "$mq_x" ]
}
mq_c=; mq_e=
mq_seen @completion@ && mq_c=$mq_x
mq_seen @error@ && mq_e=$mq_x
if [ -n "$mq_e" ] && { [ -z "$mq_c" ] || [ "$mq_e" -lt "$mq_c" ]; }; then mq_c=; fi
if [ -n "$mq_c" ]; then mq_e=; fi
if [ "$mq_st" -gt 128 ] && [ "$mq_st" -le 192 ]; then mq_killed=1; else mq_killed=; fi
if grep -qF '@power_off_failed@' -- @log@ 2>/dev/null; then mq_on=1; else mq_on=; fi
if { [ -n "$mq_killed" ] || [ -n "$mq_on" ]; } && [ -n "$mq_c$mq_e" ]; then
  mq_class=infrastructure
elif [ -n "$mq_c" ]; then
  mq_class=passed
elif [ -n "$mq_e" ]; then
  mq_class='test'
elif [ ! -s @log@ ] || grep -qE @lab_failed@ -- @log@ 2>/dev/null; then
  mq_class=infrastructure
elif [ -n "$mq_killed" ] || [ "$mq_st" = 5 ] || [ "$mq_st" = 6 ]; then
  mq_class=infrastructure
elif [ "$mq_st" = 0 ]; then
  mq_class=passed
elif grep -qE @image_started@ -- @log@ 2>/dev/null; then
  mq_class='test'
else
  mq_class=infrastructure
fi
@mutex_fn@
# Under the health mutex too: an admin's set does not hold the board's lock.
# A mutex that cannot be had in 30 s is gone without: the count matters more.
( mq_in "$b/health" 777 ) 2>/dev/null
mq_hlock @system_file@ || true
mq_state=good; mq_fail=0; mq_since=; mq_by=; mq_reason=; mq_run=
if [ -e "$b/health/"@system_file@ ] || [ -L "$b/health/"@system_file@ ]; then
  mq_hc=$(mq_read "$b/health/"@system_file@ 4097)
  mq_get "$mq_hc" state || mq_x=unknown
  [ "${#mq_hc}" -le 4096 ] || mq_x=unknown
  mq_state=$mq_x
  case $mq_state in good|unknown|bad|maintenance|retired) ;; *) mq_state=unknown ;; esac
  mq_get "$mq_hc" failures; mq_fail=$mq_x
  mq_get "$mq_hc" since; mq_since=$mq_x
  mq_get "$mq_hc" by; mq_by=$mq_x
  mq_get "$mq_hc" reason; mq_reason=$mq_x
  mq_get "$mq_hc" run; mq_run=$mq_x
fi
case $mq_fail in ''|*[!0-9]*) mq_fail=0 ;; esac
mq_was=$mq_fail
mq_to=$mq_state
case $mq_class in
  passed) mq_fail=0 ;;
  infrastructure) mq_fail=$((mq_fail + 1)) ;;
esac
mq_first "$b/health/threshold"
mq_limit=$mq_x
case $mq_limit in ''|*[!0-9]*) mq_limit=3 ;; esac
if [ "$mq_class" = infrastructure ]; then
  case $mq_state in
    good|unknown)
      if [ "$mq_fail" -gt "$mq_limit" ]; then
        mq_to=bad
      elif [ "$mq_fail" -ge "$mq_limit" ]; then
        mq_to=unknown
      fi ;;
  esac
fi
if [ "$mq_to" != "$mq_state" ] || [ "$mq_fail" != "$mq_was" ]; then
  if [ "$mq_to" != "$mq_state" ]; then
    mq_since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    mq_by=mq
    mq_reason="$mq_fail infrastructure failures in a row (the last: runner status $mq_st)"
    mq_run=@run@
  fi
  printf 'state=%s\nsince=%s\nby=%s\nreason=%s\nrun=%s\nfailures=%s\n' \
    "$mq_to" "$mq_since" "$mq_by" "$mq_reason" "$mq_run" "$mq_fail" |
    ( mq_in "$b/health" 777 && mq_replace @system_file@ ) 2>/dev/null
  if [ "$mq_to" != "$mq_state" ]; then
    ( mq_in "$b/health" 777 && mq_in "$b/health/logs" &&
      mq_append "$mq_me" "$(printf '%s\t%s\t%s\t%s\t%s\t%s\t%s' "$mq_since" @system@ "$mq_state" "$mq_to" mq "$mq_reason" "$mq_run")" ) 2>/dev/null
    printf '@health_mark@%s %s\n' "$mq_to" "$mq_reason"
  fi
fi
mq_hunlock
# The run, for the lab's status: when it ended, its class, the runner's
# status, who ran it and its key (mq_history comes with the lock client's
# script head, sent before this).
mq_history @system@ runs "$(date +%s) $mq_class $mq_st $mq_me "@run_text@
