# PROTOCOL.md's step 1: a lock already ours is not taken again.
if [ "$(stat --format=%U -- @lock@ 2>/dev/null)" = "$mq_me" ]; then
  mq_first @keyfile@
  mq_k=@key@
  if [ "$mq_x" = 0 ] && [ "$mq_k" = 0 ]; then exit @own@; fi
  if [ "$mq_x" = "$mq_k" ]; then exit @own_key@; fi
fi
