# PROTOCOL.md's step 1: a lock already ours is not taken again.
if [ "$(stat --format=%U -- @lock@ 2>/dev/null)" = "$me" ]; then
  sk=$(cat -- @keyfile@ 2>/dev/null)
  mq_k=@key@
  if [ "$sk" = 0 ] && [ "$mq_k" = 0 ]; then exit @own@; fi
  if [ "$sk" = "$mq_k" ]; then exit @own_key@; fi
fi
