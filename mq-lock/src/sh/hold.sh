echo @holding_mark@
trap 'exit 0' HUP INT TERM
while sleep @period@; do touch -c -- "$b/$mq_sys.lock" 2>/dev/null; done
