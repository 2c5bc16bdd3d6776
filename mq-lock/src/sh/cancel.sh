n=$(pgrep -c -u "$mq_me" -f @pattern@)
pkill -u "$mq_me" -f @pattern@
printf '@cancelled_mark@%s\n' "${n:-0}"
