# The whole lab in one round trip, with a handful of processes however many
# boards it has (mq_core::status reads it). Each line is a tag, then
# tab-separated values; the values that may hold anything (keys, reasons,
# a file's lines) come last. What other users wrote is read as the safe
# functions read (regular files only, never blocking, bounded); owners come
# from the file system; names with control characters are left out, so no
# file can forge a line.
mq_now_s=$(date +%s)
mq_first "$b/VERSION"
printf '@mark@version\t%s\n' "$mq_x"
printf '@mark@now\t%s\n' "$mq_now_s"
mq_tab='	'
# Every lock and key file: owner, modification time (epoch, and as
# PROTOCOL.md's info says it), name; one stat for all.
set --
for mq_f in "$b"/*.lock "$b"/*.key; do
  case ${mq_f##*/} in *"$mq_nl"*|*"$mq_tab"*|*"$mq_cr"*) continue ;; esac
  { [ -e "$mq_f" ] || [ -L "$mq_f" ]; } && set -- "$@" "$mq_f"
done
[ $# -gt 0 ] && stat --printf='@mark@file\t%U\t%Y\t%y\t%n\n' -- "$@" 2>/dev/null
# Each lock's content (its reclaim timeout: digits only) and its key.
for mq_f in "$@"; do
  case $mq_f in *.lock) ;; *) continue ;; esac
  mq_first "$mq_f"
  case $mq_x in *[!0-9]*) mq_x= ;; esac
  mq_c=$mq_x
  mq_first "${mq_f%.lock}.key"
  mq_n=${mq_f##*/}
  printf '@mark@lock\t%s\t%s\t%s\n' "$mq_c" "${mq_n%.lock}" "$mq_x"
done
# Directories that let other users remove what is not theirs, or are links.
[ -L "$b/health" ] && printf '@mark@unsafe\t%s\n' "$b/health is a link"
find "$b/queue" "$b/health/logs" -maxdepth 1 -regextype posix-extended -regex '.*/[^/[:cntrl:]]*' \
  \( -type l -printf '@mark@unsafe\t%p is a link (owner %u)\n' -o \
  -type d -perm -0002 ! -perm -1000 \
  -printf '@mark@unsafe\t%p is mode %m without the sticky bit (owner %u)\n' \) 2>/dev/null
# Health: each system's file that exists (whatever it is), and the lines
# of those that are regular files of at most 4 KiB (mq_core::health::MAX_FILE).
if [ -d "$b/health" ] && [ ! -L "$b/health" ]; then
  find "$b/health" -mindepth 1 -maxdepth 1 ! -type d -regextype posix-extended -regex '.*/health/[^/.[:cntrl:]]+' \
    ! -name threshold ! -name log -printf '@mark@healthfile\t%f\n'
  find "$b/health" -mindepth 1 -maxdepth 1 -type f -regextype posix-extended -regex '.*/health/[^/.[:cntrl:]]+' \
    ! -name threshold ! -name log -size -4097c -exec grep -D skip -a -s -H -Z -e '' -- {} + |
    tr '\000' '\t' | sed "s|^|@mark@health$mq_tab|"
  # The last changes of health: each user's own log.
  find "$b/health/logs" -mindepth 1 -maxdepth 1 -type f -regextype posix-extended -regex '.*/[^/[:cntrl:]]+' \
    -printf '%u %f\n' 2>/dev/null | while read -r mq_u mq_f; do
    [ "$mq_f" = "$mq_u" ] || continue
    mq_tail "$b/health/logs/$mq_u" 32768 | tail -n 200 | sed "s|^|@mark@change$mq_tab$mq_u$mq_tab|"
  done
fi
[ -d "$b/queue" ] && [ ! -L "$b/queue" ] || exit 0
# The live tickets of every line, with their owners, each at most 1 KiB.
find "$b/queue" -mindepth 2 -maxdepth 2 -type f -regextype posix-extended \
  -regex '.*/queue/[^/[:cntrl:]]+/T[0-9]{12}\.[0-9]{1,9}\.[0-9]{1,10}' \
  -newermt "@$((mq_now_s - 3))" ! -newermt "@$((mq_now_s + 5))" -printf '%u\t%p\n' 2>/dev/null |
  LC_ALL=C sort -t "$mq_tab" -k 2 | while IFS="$mq_tab" read -r mq_u mq_f; do
    mq_s=${mq_f%/*}
    mq_read "$mq_f" 1024 | head -n 8 | while IFS= read -r mq_l; do
      printf '@mark@ticket\t%s\t%s\t%s\t%s\n' "${mq_f##*/}" "${mq_s##*/}" "$mq_u" "$mq_l"
    done
  done
# Each board's hold, wait and run history: every user's own files (those
# under 17 KiB: mq keeps them to 40 lines), a file's owner in its name.
find "$b/queue" -mindepth 2 -maxdepth 2 -type f -regextype posix-extended \
  -regex '.*/queue/[^/[:cntrl:]]+/\.(holds|waits|runs)\.[^/[:cntrl:]]+' -size -17k \
  -printf '%u %p\n' 2>/dev/null | {
  set --
  while read -r mq_u mq_f; do
    mq_n=${mq_f##*/}
    [ "${mq_n#.*.}" = "$mq_u" ] && set -- "$@" "$mq_f"
  done
  [ $# -gt 0 ] && grep -D skip -a -s -H -Z -e '' -- "$@" | tr '\000' '\t' |
    sed "s|^|@mark@history$mq_tab|"
}
exit 0
