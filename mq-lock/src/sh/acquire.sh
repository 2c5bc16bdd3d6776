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
  if [ "$left" -lt 0 ]; then r=4; else r=$((left - 1)); [ "$r" -gt 4 ] && r=4; left=$((left - r - 1)); fi
  # PROTOCOL.md's command line, word for word (old clients' cancel looks
  # for it); $L is empty or two words.
  # shellcheck disable=SC2086
  umask 0111 && lockfile -@retry@ $L -r "$r" @lock@ && { trap '' HUP INT TERM; rm -f @keyfile@ && printf '%s' @key@ > @keyfile@ && chmod a-w,g+r @keyfile@ && chmod u+w @lock@ && printf '%s' @timeout@ > @lock@ && chmod a-w @lock@; } && { echo @acquired_mark@; @then@
@hold@# A safety net: a hand-over's commands end the script themselves.
# shellcheck disable=SC2317
exit 0; }
  [ "$left" -eq 0 ] && exit @gave_up@
  sleep @retry@
done
