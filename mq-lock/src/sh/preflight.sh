# PROTOCOL.md's preflight, folded into an operation until it has run once:
# checks BASE/VERSION and prints who we are on the host. A file written on
# Windows ends its line with a CR, which is dropped.
mq_first "$b/VERSION"
mq_v=$mq_x
printf '@preflight_mark@%s %s\n' "$mq_me" "$mq_v"
[ "$mq_v" = @version@ ] || exit @version_code@
