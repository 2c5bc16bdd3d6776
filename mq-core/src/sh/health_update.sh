# The board's health, under its lock: a run that passed resets the count of
# infrastructure failures in a row; an infrastructure failure adds one and,
# at the lab's threshold (BASE/health/threshold, 3 unless set), moves a good
# board to unknown, and one more to bad. Test failures change nothing. Only
# a good or unknown board changes by itself. (mq_core::health::classify
# sorts runs the same way.)
mq_hd=@health_dir@
mq_hf="$mq_hd"/@system_file@
case $mq_st in
  0) mq_class=passed ;;
  3) mq_class='test' ;;
  4) if grep -qE @image_started@ @log@ 2>/dev/null; then mq_class='test'; else mq_class=infrastructure; fi ;;
  *) mq_class=infrastructure ;;
esac
mq_state=good; mq_fail=0; mq_since=; mq_by=; mq_reason=; mq_run=
if [ -f "$mq_hf" ]; then
  while IFS='=' read -r mq_k mq_v; do
    case $mq_k in
      state) mq_state=$mq_v ;;
      failures) mq_fail=$mq_v ;;
      since) mq_since=$mq_v ;;
      by) mq_by=$mq_v ;;
      reason) mq_reason=$mq_v ;;
      run) mq_run=$mq_v ;;
    esac
  done < "$mq_hf"
fi
case $mq_fail in ''|*[!0-9]*) mq_fail=0 ;; esac
mq_was=$mq_fail
mq_to=$mq_state
case $mq_class in
  passed) mq_fail=0 ;;
  infrastructure) mq_fail=$((mq_fail + 1)) ;;
esac
mq_limit=
{ IFS= read -r mq_limit < "$mq_hd/threshold"; } 2>/dev/null
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
  mkdir -p "$mq_hd" 2>/dev/null && chmod 777 "$mq_hd" 2>/dev/null
  printf 'state=%s\nsince=%s\nby=%s\nreason=%s\nrun=%s\nfailures=%s\n' \
    "$mq_to" "$mq_since" "$mq_by" "$mq_reason" "$mq_run" "$mq_fail" > "$mq_hf.$$" &&
    chmod 644 "$mq_hf.$$" && mv -f "$mq_hf.$$" "$mq_hf"
  if [ "$mq_to" != "$mq_state" ]; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mq_since" @system@ "$mq_state" "$mq_to" mq "$mq_reason" "$mq_run" >> "$mq_hd/log"
    printf '@health_mark@%s %s\n' "$mq_to" "$mq_reason"
  fi
fi
# The run, for the lab's status: when it ended, its class, the runner's
# status, who ran it and its key. (mq_history is defined just before this
# script, and again by the release after it, which shellcheck takes for the
# only definition.)
# shellcheck disable=SC2218
mq_history @runs_file@ "$(date +%s) $mq_class $mq_st ${mq_me:-$(id -un)} "@run_text@
