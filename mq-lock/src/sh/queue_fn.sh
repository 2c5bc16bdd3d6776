# The lines of mq waiters (BASE/queue/SYSTEM): one ticket file per live
# wait, named so that byte order is the order of service (arrival time less
# 600 s per priority point: a waiter gains a point every ten minutes, so no
# one starves), kept fresh every second by a process that lives as long as
# this shell. A ticket not touched for 3 s is a dead wait's and is removed
# by whoever sees it. A pool's waiter has the same ticket in every member's
# line. Each line also keeps the board's recent hold times (.holds).
mq_tn=
mq_toucher=
mq_seen=
# mq_ahead DIR: how many live tickets are ahead of ours in the line DIR (all
# of them before we have one), in mq_n.
mq_ahead() {
  mq_n=0
  [ -d "$1" ] || return 0
  touch -d '-3 seconds' "$1/.fresh.$mq_me" 2>/dev/null || return 0
  find "$1" -maxdepth 1 -name 'T*' ! -newer "$1/.fresh.$mq_me" -exec rm -f -- {} + 2>/dev/null
  for mq_f in "$1"/T*; do
    [ -e "$mq_f" ] || continue
    [ "${mq_f##*/}" = "$mq_tn" ] && break
    mq_n=$((mq_n + 1))
  done
}
# mq_places: each line's count ahead of us, as "/SYSTEM:N/SYSTEM:N/" (a
# system's name has no slash), in mq_at.
mq_places() {
  mq_at=/
  # shellcheck disable=SC2041
  for mq_qd in @queue_dirs@; do
    mq_ahead "$mq_qd"
    mq_at="$mq_at${mq_qd##*/}:$mq_n/"
  done
}
# mq_join: our ticket in every line, and the process keeping them fresh.
mq_join() {
  mq_now=$(date +%s.%N)
  mq_tn=$(printf 'T%012d.%s.%s' $(( ${mq_now%.*} - 600 * @priority@ )) "${mq_now#*.}" "$$")
  set --
  # shellcheck disable=SC2041
  for mq_qd in @queue_dirs@; do
    ( umask 0 && mkdir -p -- "$mq_qd" ) 2>/dev/null
    printf 'user=%s\nkey=%s\nsince=%s\npriority=%s\npool=%s\n' \
      "$mq_me" @key_text@ "${mq_now%.*}" @priority@ @pool@ > "$mq_qd/$mq_tn" 2>/dev/null &&
      set -- "$@" "$mq_qd/$mq_tn"
  done
  [ $# -gt 0 ] || { mq_tn=; return 0; }
  # A program of its own (not a subshell): its command line is not the
  # wait's, which `sem -cancel` looks for.
  sh -c 'p=$1; shift; while kill -0 "$p" 2>/dev/null; do touch -c -- "$@"; sleep 1; done' \
    mq-ticket "$$" "$@" </dev/null >/dev/null 2>&1 &
  mq_toucher=$!
}
# mq_leave: out of every line.
mq_leave() {
  [ -n "$mq_toucher" ] && kill "$mq_toucher" 2>/dev/null
  if [ -n "$mq_tn" ]; then
    # shellcheck disable=SC2041
  for mq_qd in @queue_dirs@; do rm -f -- "$mq_qd/$mq_tn"; done
  fi
  mq_tn=
}
# mq_estimate SYSTEM AHEAD: seconds until our turn on SYSTEM, from the
# median of its last 20 holds, in mq_e ('-' without a history); what is
# known of its holder in mq_held (seconds, or '-'), mq_owner and mq_key.
mq_estimate() {
  mq_e=- mq_held=- mq_owner=- mq_key=''
  mq_ks=$(stat --format=%Y -- "$b/$1.key" 2>/dev/null)
  mq_o=$(stat --format=%U -- "$b/$1.lock" 2>/dev/null)
  if [ -n "$mq_ks" ] && [ -n "$mq_o" ]; then
    mq_held=$(( $(date +%s) - mq_ks )) mq_owner=$mq_o
    mq_key=$(head -c 200 -- "$b/$1.key" 2>/dev/null | tr -c '[:print:]' '?')
  fi
  mq_med=$(tail -n 20 -- "$b/queue/$1/.holds" 2>/dev/null | sort -n |
    awk '$1 ~ /^[0-9]+$/ { a[++n] = $1 } END { if (n) print a[int((n + 1) / 2)] }')
  [ -n "$mq_med" ] || return 0
  mq_left=$mq_med
  [ "$mq_held" = - ] || mq_left=$(( mq_med > mq_held ? mq_med - mq_held : 0 ))
  mq_e=$(( mq_left + $2 * mq_med ))
}
# mq_tell: our place where it is best (soonest by the estimates, else the
# fewest ahead), printed when a place or a holder changes.
mq_tell() {
  set --
  mq_rest=${mq_at#/}
  while [ -n "$mq_rest" ]; do
    mq_p=${mq_rest%%/*} mq_rest=${mq_rest#*/}
    set -- "$@" "$b/${mq_p%:*}.key"
  done
  mq_sig="$mq_at $(stat --format=%Y -- "$@" 2>/dev/null | tr '\n' ' ')"
  [ "$mq_sig" = "$mq_seen" ] && return 0
  mq_seen=$mq_sig
  mq_best='' mq_line=''
  mq_rest=${mq_at#/}
  while [ -n "$mq_rest" ]; do
    mq_p=${mq_rest%%/*} mq_rest=${mq_rest#*/}
    mq_estimate "${mq_p%:*}" "${mq_p##*:}"
    mq_rank=$(( ${mq_p##*:} * 1000000 ))
    [ "$mq_e" = - ] || mq_rank=$mq_e
    if [ -z "$mq_best" ] || [ "$mq_rank" -lt "$mq_best" ]; then
      mq_best=$mq_rank
      mq_line="$(( ${mq_p##*:} + 1 )) $mq_e $mq_held $mq_owner ${mq_p%:*}/$mq_key"
    fi
  done
  echo "@place_mark@$mq_line"
}
