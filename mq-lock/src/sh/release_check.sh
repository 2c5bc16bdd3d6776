o=
[ -e @lock@ ] && o=$(stat --format=%U -- @lock@ 2>/dev/null)
if [ -z "$o" ] || [ "$o" != "$mq_me" ]; then
  printf '@owner_mark@%s\n' "$o"
  exit @not_yours@
fi
k=; { IFS= read -r k < @keyfile@; } 2>/dev/null
[ "$k" = @key@ ] || exit @wrong_key@
