  # One attempt a round, so that the line (and a hangup) is looked at again
  # between attempts. PROTOCOL.md's command line, word for word (old
  # clients' cancel looks for it); $L is empty, or -l and the holder's
  # reclaim timeout.
  if [ -z "$mq_sys" ]; then
    case "$mq_at" in
      */@system@:0/*)
        L=$(mq_reclaim @lock@)
        # shellcheck disable=SC2086
        umask 0111 && lockfile -@retry@ $L -r "$r" @lock@ && { trap '' HUP INT TERM; rm -f @keyfile@ && printf '%s' @key@ > @keyfile@ && chmod a-w,g+r @keyfile@ && chmod u+w @lock@ && printf '%s' @timeout@ > @lock@ && chmod a-w @lock@; } && mq_sys=@system@
        ;;
    esac
  fi
