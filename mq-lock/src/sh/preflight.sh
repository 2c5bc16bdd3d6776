# PROTOCOL.md's preflight, folded into an operation until it has run once:
# checks BASE/VERSION and prints who we are on the host. `read` is the
# shell's own (no process for the version); a file written on Windows ends
# its line with a CR, which is dropped.
mq_v=
{ IFS= read -r mq_v < "$b/VERSION"; } 2>/dev/null
mq_v=${mq_v%@cr@}
mq_me=$(whoami)
printf '@preflight_mark@%s %s\n' "$mq_me" "$mq_v"
[ "$mq_v" = @version@ ] || exit @version_code@
