# The live tickets of each system's line, in the order of service: a line
# naming the system, the ticket and its owner (from the file system, not
# from what the ticket says), then each of the ticket's first lines (at
# most 1 KiB) after a mark of its own, so that no ticket can forge another.
mq_now_s=$(date +%s)
for mq_s in @systems@; do
  mq_q=@queue_base@/"$mq_s"
  { [ -d "$mq_q" ] && [ ! -L "$mq_q" ]; } || continue
  for mq_f in $(mq_live "$mq_q" "$mq_now_s"); do
    mq_o=$(stat --format=%U -- "$mq_q/$mq_f" 2>/dev/null) || continue
    printf '@ticket_mark@%s %s %s\n' "$mq_s" "$mq_f" "$mq_o"
    mq_read "$mq_q/$mq_f" 1024 | head -n 8 | sed 's/^/@field_mark@/'
    echo
  done
done
