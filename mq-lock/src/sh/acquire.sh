@precheck@f=@lock@
me=$mq_me
@save_umask@o=
[ -e "$f" ] && o=$(stat --format=%U -- "$f" 2>/dev/null)
if [ -n "$o" ] && [ "$o" = "$me" ]; then
  sk=$(cat -- @keyfile@ 2>/dev/null)
  mq_k=@key@
  if [ "$sk" = 0 ] && [ "$mq_k" = 0 ]; then exit @own@; fi
  if [ "$sk" = "$mq_k" ]; then exit @own_key@; fi
fi
left=@attempts@
last=
L=
first=1
# A hangup, ^C or cancel (the client gone) takes this wait out of the line
# before it ends; it is heard between attempts. Once lockfile succeeds it is
# ignored until the key is written (see below), as before.
mq_hup=
trap 'mq_hup=1' HUP INT TERM
while :; do
  # A lock that was free a moment ago is simply tried: its holder and
  # reclaim timeout are read only once it turns out to be taken.
  if [ -z "$first" ] || [ -n "$o" ]; then
    o=$(stat --format=%U -- "$f" 2>/dev/null)
    L=
    if [ -n "$o" ]; then
      h="$o $(stat --format=%y -- "$f" 2>/dev/null)"
      [ "$h" = "$last" ] || printf '@holder_mark@%s\n' "$h"
      last=$h
      n=$(cat -- "$f" 2>/dev/null)
      case "$n" in ''|*[!0-9]*|0) ;; *) L="-l $n" ;; esac
    fi
  fi
  first=
  # In line: mq waiters are served in order (old clients may overtake).
  mq_ahead
  if [ "$mq_n" -gt 0 ] || { [ -n "$o" ] && [ -z "$mq_t" ]; }; then
    [ -n "$mq_t" ] || { mq_join; mq_ahead; }
    if [ "$mq_n" != "$mq_place" ]; then
      mq_place=$mq_n
      echo "@place_mark@$((mq_n + 1))"
    fi
  fi
  @queue_timeout@
  if [ "$mq_n" -gt 0 ]; then
    [ "$left" -gt 0 ] && left=$((left - 1))
    [ "$left" -eq 0 ] && { mq_leave; exit @gave_up@; }
    sleep @retry@
    [ -n "$mq_hup" ] && { mq_leave; exit 129; }
    continue
  fi
  # One attempt a round, so that the line (and a hangup) is looked at
  # again between attempts.
  r=0
  [ "$left" -gt 0 ] && left=$((left - 1))
  # PROTOCOL.md's command line, word for word (old clients' cancel looks
  # for it); $L is empty or two words.
  # shellcheck disable=SC2086
  umask 0111 && lockfile -@retry@ $L -r "$r" @lock@ && { trap '' HUP INT TERM; rm -f @keyfile@ && printf '%s' @key@ > @keyfile@ && chmod a-w,g+r @keyfile@ && chmod u+w @lock@ && printf '%s' @timeout@ > @lock@ && chmod a-w @lock@; } && { mq_leave; echo @acquired_mark@; @then@
@hold@# A safety net: a hand-over's commands end the script themselves.
# shellcheck disable=SC2317
exit 0; }
  [ -n "$mq_hup" ] && { mq_leave; exit 129; }
  [ "$left" -eq 0 ] && { mq_leave; exit @gave_up@; }
  sleep @retry@
  [ -n "$mq_hup" ] && { mq_leave; exit 129; }
done
