# Each system's health file that exists (whatever it is: only a regular
# file is read, one byte past 4 KiB to tell a bigger one), after a line
# naming it. A system with no line has no file: good.
for mq_s in @systems@; do
  if [ -e @health_dir@/"$mq_s" ] || [ -L @health_dir@/"$mq_s" ]; then
    printf '@file_mark@%s\n' "$mq_s"
    mq_read @health_dir@/"$mq_s" 4097
    echo
  fi
done
