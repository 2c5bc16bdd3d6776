o=
{ [ -e @lock@ ] || [ -L @lock@ ]; } && o=$(stat --format=%U -- @lock@ 2>/dev/null)
if [ -z "$o" ] || [ "$o" != "$mq_me" ]; then
  printf '@owner_mark@%s\n' "$o"
  exit @not_yours@
fi
mq_first @keyfile@
[ "$mq_x" = @key@ ] || exit @wrong_key@
