# Every user's own health log (the last MiB of each), each line after its
# owner (from the file system) and a tab.
mq_tab='	'
find "$b/health/logs" -mindepth 1 -maxdepth 1 -type f -regextype posix-extended \
  -regex '.*/[^/[:cntrl:]]+' -printf '%u %f\n' 2>/dev/null | while read -r mq_u mq_f; do
  [ "$mq_f" = "$mq_u" ] || continue
  mq_tail "$b/health/logs/$mq_u" 1048576 | sed "s|^|$mq_u$mq_tab|"
done
exit 0
