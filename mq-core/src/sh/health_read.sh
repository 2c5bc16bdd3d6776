# Each system's health file (at most 4 KiB, a regular file only), after a
# line naming it (no file: good).
for mq_s in @systems@; do
  printf '@file_mark@%s\n' "$mq_s"
  mq_read @health_dir@/"$mq_s" 4096
  echo
done
