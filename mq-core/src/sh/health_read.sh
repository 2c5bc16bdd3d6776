# Each system's health file, after a line naming it (no file: good).
for mq_s in @systems@; do
  printf '@file_mark@%s\n' "$mq_s"
  cat -- @health_dir@/"$mq_s" 2>/dev/null
done
