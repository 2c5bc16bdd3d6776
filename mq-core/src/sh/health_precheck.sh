# Before waiting for a system named by itself: one that is not good is
# refused, with its state and reason (mq_refuse ends the acquire). A file
# that does not say a known state is a health nobody can vouch for.
if [ -e @health_file@ ] || [ -L @health_file@ ]; then
  mq_hc=$(mq_read @health_file@ 4097)
  mq_get "$mq_hc" state || mq_x=unknown
  [ "${#mq_hc}" -le 4096 ] || mq_x=unknown
  mq_hs=$mq_x
  case $mq_hs in good|unknown|bad|maintenance|retired) ;; *) mq_hs=unknown ;; esac
  mq_get "$mq_hc" reason
  [ "$mq_hs" = good ] || mq_refuse "$mq_hs: $mq_x"
fi
