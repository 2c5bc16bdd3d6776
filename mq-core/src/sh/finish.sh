# The runner has ended. The guard and the lock's keeper stand down; the
# client reads the runner's status (and, with -l, its log, raw) after the
# end mark; then the host removes the run's files and gives the lock back
# itself.
kill "$mq_guard" 2>/dev/null
[ -n "${mq_keeper:-}" ] && kill "$mq_keeper" 2>/dev/null
# A runner that died of a signal did not power its board off: the runner's
# own --shutdown (PROTOCOL.md) does it now, within two minutes where the
# host has timeout(1). If it cannot, the console and the log say so with
# the lab's marker, where the report and the health count both see it.
if [ "$mq_st" -gt 128 ] && [ "$mq_st" -le 192 ]; then
  mq_t=; command -v timeout >/dev/null 2>&1 && mq_t='timeout 120'
  if ! mq_off=$($mq_t @reboot@ --shutdown 2>&1 </dev/null); then
    mq_off=$(printf '%s\n' "$mq_off" | tail -n 1 | tr -cd '[:print:]' | cut -c 1-300)
    printf '@power_off_failed@ the runner ended with status %s and its --shutdown failed: %s\r\n' \
      "$mq_st" "${mq_off:-no output}" | tee -a -- @log@
  fi
fi
stty -opost 2>/dev/null
mq_n=-1
@measure_log@
printf '@end_mark@ %s %s\n' "$mq_st" "$mq_n"
[ "$mq_n" -ge 0 ] && cat -- @log@
@health@
@release@
