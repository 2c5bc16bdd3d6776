# Before waiting for a system named by itself: one that is not good is
# refused, with its state and reason (mq_refuse ends the acquire).
mq_hf=@health_dir@/@system_file@
if [ -f "$mq_hf" ]; then
  mq_hs=good; mq_hr=
  while IFS='=' read -r mq_k mq_v; do
    case $mq_k in
      state) mq_hs=$mq_v ;;
      reason) mq_hr=$mq_v ;;
    esac
  done < "$mq_hf"
  [ "$mq_hs" = good ] || mq_refuse "$mq_hs: $mq_hr"
fi
