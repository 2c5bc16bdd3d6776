# mq_history FILE LINE: appends LINE to one of a board's history files under
# BASE/queue/SYSTEM (made, and left, writable by every mq user), keeping the
# last 20 lines once it passes 40.
mq_history() {
  (
    umask 0 && mkdir -p -- "${1%/*}" && printf '%s\n' "$2" >> "$1" &&
      if [ "$(wc -l < "$1")" -gt 40 ]; then
        tail -n 20 -- "$1" > "$1.$$" && mv -f -- "$1.$$" "$1"
      fi
  ) 2>/dev/null
}
