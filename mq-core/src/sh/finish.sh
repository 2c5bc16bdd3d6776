# The runner has ended. The guard and the lock's keeper stand down; the
# client reads the runner's status (and, with -l, its log, raw) after the
# end mark; then the host removes the run's files and gives the lock back
# itself.
kill "$mq_guard" 2>/dev/null
[ -n "${mq_keeper:-}" ] && kill "$mq_keeper" 2>/dev/null
stty -opost 2>/dev/null
mq_n=-1
@measure_log@
printf '@end_mark@ %s %s\n' "$mq_st" "$mq_n"
[ "$mq_n" -ge 0 ] && cat -- @log@
@health@
@release@
