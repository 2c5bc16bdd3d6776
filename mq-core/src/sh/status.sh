# The whole lab in one round trip, with a handful of processes however many
# boards it has (mq_core::status reads it). Each line is a tag, then
# tab-separated values; the values that may hold anything (keys, file
# names, reasons) come last.
b=@base@
mq_me=${USER:-$(id -un)}
mq_v=; { IFS= read -r mq_v < "$b/VERSION"; } 2>/dev/null
printf '@mark@version\t%s\n' "$mq_v"
printf '@mark@now\t%s\n' "$(date +%s)"
# Every lock and key file: owner, modification time (epoch, and as
# PROTOCOL.md's info says it), name; one stat for all.
stat --printf='@mark@file\t%U\t%Y\t%y\t%n\n' -- "$b"/*.lock "$b"/*.key 2>/dev/null
# Each lock's content (its reclaim timeout) and its key, read by the shell.
for mq_f in "$b"/*.lock; do
  [ -e "$mq_f" ] || continue
  mq_c=; { IFS= read -r mq_c < "$mq_f"; } 2>/dev/null
  mq_k=; { IFS= read -r mq_k < "${mq_f%.lock}.key"; } 2>/dev/null
  mq_n=${mq_f##*/}
  printf '@mark@lock\t%s\t%s\t%s\n' "$mq_c" "${mq_n%.lock}" "$mq_k"
done
# Health: each system's file, line by line.
for mq_f in "$b"/health/*; do
  [ -f "$mq_f" ] || continue
  case ${mq_f##*/} in log|threshold|*.*) continue ;; esac
  while IFS= read -r mq_l || [ -n "$mq_l" ]; do
    printf '@mark@health\t%s\t%s\n' "${mq_f##*/}" "$mq_l"
  done < "$mq_f"
done
# The last changes of health, every board's.
[ -f "$b/health/log" ] && tail -n 200 -- "$b/health/log" 2>/dev/null |
  while IFS= read -r mq_l; do printf '@mark@change\t%s\n' "$mq_l"; done
[ -d "$b/queue" ] || exit 0
# The live tickets of every line (touched in the last 3 s), then each
# board's hold, wait and run history.
if touch -d '-3 seconds' "$b/queue/.fresh.$mq_me" 2>/dev/null; then
  find "$b/queue" -mindepth 2 -maxdepth 2 -name 'T*' -newer "$b/queue/.fresh.$mq_me" 2>/dev/null |
    sort | while IFS= read -r mq_f; do
      mq_s=${mq_f%/*}
      while IFS= read -r mq_l; do
        printf '@mark@ticket\t%s\t%s\t%s\n' "${mq_f##*/}" "${mq_s##*/}" "$mq_l"
      done < "$mq_f"
    done
fi
for mq_f in "$b"/queue/*/.holds "$b"/queue/*/.waits "$b"/queue/*/.runs; do
  [ -f "$mq_f" ] || continue
  mq_s=${mq_f%/*}
  while IFS= read -r mq_l; do
    printf '@mark@%s\t%s\t%s\n' "${mq_f##*/.}" "${mq_s##*/}" "$mq_l"
  done < "$mq_f"
done
