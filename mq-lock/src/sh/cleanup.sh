me=$mq_me
for s in @systems@; do
  f="$b/$s.lock"; k="$b/$s.key"
  [ "$(stat --format=%U -- "$f" 2>/dev/null)" = "$me" ] || continue
  [ "$(cat -- "$k" 2>/dev/null)" = @key@ ] || continue
  rm -f -- "$k"; sync; rm -f -- "$f"
  printf '@released_mark@%s\n' "$s"
done
