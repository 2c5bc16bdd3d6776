( trap 'exit 0' HUP TERM; while sleep @period@; do touch -c -- "$b/$mq_sys.lock" 2>/dev/null; done ) &
mq_keeper=$!
