# The whole lab in one round trip, with a handful of processes however many
# boards it has (see mq_core::status for the lines' format). Every value is
# printed after a tab-separated tag; the parts that may hold anything (keys,
# reasons) come last on their line.
printf '@mark@now\t%s\n' "$(date +%s)"
# Every lock and key file: name, owner, modification time (epoch and as
# PROTOCOL.md's info says it), in one stat.
set -- "$b"/*.lock "$b"/*.key
[ -e "$1" ] || shift
[ $# -gt 0 ] && [ -e "$1" ] && stat --printf='@mark@file\t%U\t%Y\t%y\t%n\n' -- "$@" 2>/dev/null
# Each lock's content (its reclaim timeout) and its key, read by the shell.
for mq_f in "$b"/*.lock; do
  [ -e "$mq_f" ] || continue
  mq_c=; { IFS= read -r mq_c < "$mq_f"; } 2>/dev/null
  mq_k=; { IFS= read -r mq_k < "${mq_f%.lock}.key"; } 2>/dev/null
  printf '@mark@lock\t%s\t%s\t%s\n' "${mq_f##*/}" "$mq_c" "$mq_k"
done
# Health: each system's file, line by line.
for mq_f in "$b"/health/*; do
  [ -f "$mq_f" ] || continue
  case ${mq_f##*/} in log|threshold|*.*) continue ;; esac
  while IFS= read -r mq_l || [ -n "$mq_l" ]; do
    printf '@mark@health\t%s\t%s\n' "${mq_f##*/}" "$mq_l"
  done < "$mq_f"
done
# The live tickets of every line (touched in the last 3 s), and each board's
# hold and run history.
if [ -d "$b/queue" ]; then
  mq_ref="$b/queue/.fresh.$mq_me"
  if touch -d '-3 seconds' "$mq_ref" 2>/dev/null; then
    find "$b/queue" -mindepth 2 -maxdepth 2 -name 'T*' -newer "$mq_ref" 2>/dev/null |
      while IFS= read -r mq_f; do
        mq_s=${mq_f%/*}
        while IFS= read -r mq_l; do
          printf '@mark@ticket\t%s\t%s\t%s\n' "${mq_s##*/}" "${mq_f##*/}" "$mq_l"
        done < "$mq_f"
      done
  fi
  for mq_f in "$b"/queue/*/.holds "$b"/queue/*/.runs "$b"/queue/*/.waits; do
    [ -f "$mq_f" ] || continue
    mq_s=${mq_f%/*}
    while IFS= read -r mq_l; do
      printf '@mark@%s\t%s\t%s\n' "${mq_f##*/.}" "${mq_s##*/}" "$mq_l"
    done < "$mq_f"
  done
fi
