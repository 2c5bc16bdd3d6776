# The NUL-separated record of one system's lock (system owner since content
# key), or nothing when it is free. Owner and time as PROTOCOL.md (`stat`,
# once for both: a user name has no space); contents read by the shell.
mq_rec() {
  f="$b/$1.lock"
  [ -e "$f" ] || return 0
  ut=$(stat --format='%U %y' -- "$f" 2>/dev/null) || return 0
  c=; { IFS= read -r c < "$f"; } 2>/dev/null
  k=; { IFS= read -r k < "$b/$1.key"; } 2>/dev/null
  printf '%s\000%s\000%s\000%s\000%s\000' "$1" "${ut%% *}" "${ut#* }" "$c" "$k"
}
