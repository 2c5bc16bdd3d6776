# The live tickets of each system's line, in the order of service: a line
# naming the system and the ticket, then the ticket's key=value lines.
for mq_s in @systems@; do
  mq_q=@queue_base@/"$mq_s"
  [ -d "$mq_q" ] || continue
  touch -d '-3 seconds' "$mq_q/.fresh.$mq_me" 2>/dev/null || continue
  for mq_f in "$mq_q"/T*; do
    [ -e "$mq_f" ] || continue
    [ -n "$(find "$mq_f" -newer "$mq_q/.fresh.$mq_me" 2>/dev/null)" ] || continue
    printf '@ticket_mark@%s %s\n' "$mq_s" "${mq_f##*/}"
    cat -- "$mq_f" 2>/dev/null
  done
done
