for mq_s in @systems@; do
  mq_f="$b/$mq_s.lock"
  [ "$(stat --format=%U -- "$mq_f" 2>/dev/null)" = "$mq_me" ] || continue
  mq_first "$b/$mq_s.key"
  [ "$mq_x" = @key@ ] || continue
  rm -f -- "$b/$mq_s.key"; sync; rm -f -- "$mq_f"
  printf '@released_mark@%s\n' "$mq_s"
done
