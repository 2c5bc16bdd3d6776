# mq_history SYSTEM KIND LINE: appends LINE to this user's own history file
# of SYSTEM's board, BASE/queue/SYSTEM/.KIND.USER (KIND: holds, waits or
# runs), keeping its last 20 lines once it passes 40. Every user writes
# only files of their own, in directories nobody else may empty (1777).
# shellcheck disable=SC2317
mq_history() {
  (
    mq_in "$b/queue" && mq_in "$b/queue/$1" || exit 1
    mq_f=".$2.$mq_me"
    mq_append "$mq_f" "$3" || exit 1
    if [ "$(mq_read "$mq_f" 65536 | wc -l)" -gt 40 ]; then
      mq_tail "$mq_f" 16384 | tail -n 20 | mq_replace "$mq_f"
    fi
  ) 2>/dev/null
}
