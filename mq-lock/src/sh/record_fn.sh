# The NUL-separated record of one system's lock (system owner since content
# key), or nothing when it is free. Owner and time as PROTOCOL.md (`stat`,
# once for both: a user name has no space); the contents' first lines, read
# as regular files only.
mq_rec() {
  mq_f="$b/$1.lock"
  [ -e "$mq_f" ] || [ -L "$mq_f" ] || return 0
  mq_ut=$(stat --format='%U %y' -- "$mq_f" 2>/dev/null) || return 0
  mq_first "$mq_f"
  mq_c=$mq_x
  mq_first "$b/$1.key"
  printf '%s\000%s\000%s\000%s\000%s\000' "$1" "${mq_ut%% *}" "${mq_ut#* }" "$mq_c" "$mq_x"
}
