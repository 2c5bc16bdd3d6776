# The lines of mq waiters (BASE/queue/SYSTEM, mode 1777): one ticket file
# per live wait, named so that byte order is the order of service (arrival
# time less 600 s per priority point: a waiter gains a point every ten
# minutes, so no one starves), kept fresh every second by a process that
# lives as long as this shell. A ticket is live while its time is within
# the last 3 s (and not ahead of the clock); only regular files named as
# tickets count. A pool's waiter has the same ticket in every member's line.
mq_tn=
mq_toucher=
mq_seen=
# Tickets that stood first in a line while its board was free, as " NAME:
# SECONDS" (when we first saw it so); one that has stood so for 30 s
# without taking the board (a forged or stuck wait) is passed over. Seeing
# the board held starts the count again.
mq_firsts=' '
# mq_ahead DIR: how many live tickets are ahead of ours in the line DIR (all
# of them before we have one), in mq_n. Our own dead tickets go (found from
# inside DIR, pinned: never through a planted link).
mq_ahead() {
  mq_n=0
  [ -d "$1" ] && [ ! -L "$1" ] || return 0
  mq_now_s=$(date +%s)
  (mq_at "$1" && find . -mindepth 1 -maxdepth 1 -type f -name 'T*' -user "$mq_me" \
    ! -newermt "@$((mq_now_s - 3))" -delete) 2>/dev/null
  mq_head=
  for mq_f in $(mq_live "$1" "$mq_now_s"); do
    [ "$mq_f" = "$mq_tn" ] && break
    case $mq_firsts in *" $mq_f:"*)
      mq_c=${mq_firsts#*" $mq_f:"}
      [ $((mq_now_s - ${mq_c%% *})) -ge 30 ] && continue ;;
    esac
    [ -n "$mq_head" ] || mq_head=$mq_f
    mq_n=$((mq_n + 1))
  done
  if [ -e "$b/${1##*/}.lock" ] || [ -L "$b/${1##*/}.lock" ]; then
    mq_firsts=' '
  elif [ -n "$mq_head" ]; then
    case $mq_firsts in *" $mq_head:"*) ;; *) mq_firsts="$mq_firsts $mq_head:$mq_now_s " ;; esac
  fi
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
    if (
      mq_in "$b/queue" && mq_in "$mq_qd" &&
        printf 'user=%s\nkey=%s\nsince=%s\npriority=%s\npool=%s\n' \
          "$mq_me" @key_text@ "${mq_now%.*}" @priority@ @pool@ |
        (umask 022 && dd of="$mq_tn" conv=excl status=none)
    ) 2>/dev/null; then
      set -- "$@" "$mq_qd/$mq_tn"
    fi
  done
  [ $# -gt 0 ] || { mq_tn=; return 0; }
  # A program of its own (not a subshell): its command line is not the
  # wait's, which `sem -cancel` looks for. `touch -h` never follows a link.
  sh -c 'p=$1; shift; while kill -0 "$p" 2>/dev/null; do touch -c -h -- "$@"; sleep 1; done' \
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
# median of its last 20 holds (every user's history, plausible values
# only), in mq_e ('-' without a history); what is known of its holder in
# mq_held (seconds, or '-'), mq_owner and mq_key.
mq_estimate() {
  mq_e=- mq_held=- mq_owner=- mq_key=''
  mq_ks=$(stat --format=%Y -- "$b/$1.key" 2>/dev/null)
  mq_o=$(stat --format=%U -- "$b/$1.lock" 2>/dev/null)
  if [ -n "$mq_ks" ] && [ -n "$mq_o" ]; then
    mq_held=$(( $(date +%s) - mq_ks )) mq_owner=$mq_o
    [ "$mq_held" -ge 0 ] || mq_held=0
    mq_key=$(mq_read "$b/$1.key" 200 | tr -c '[:print:]' '?')
  fi
  mq_med=$(cd -P -- "$b/queue/$1" 2>/dev/null &&
    find . -mindepth 1 -maxdepth 1 -type f -name '.holds.*' -size -17k -printf '%u %f\n' 2>/dev/null |
    while read -r mq_u mq_h; do
      [ "$mq_h" = "./.holds.$mq_u" ] || [ "$mq_h" = ".holds.$mq_u" ] || continue
      grep -D skip -a -h -s -e '' -- ".holds.$mq_u"
    done |
    awk -v now="$(date +%s)" '$1 ~ /^[0-9]+$/ && length($1) <= 12 && $1 <= 315360000 &&
      $2 ~ /^[0-9]+$/ && length($2) <= 12 && $2 <= now + 315360000 { print $2, $1 }' |
    sort -n | tail -n 20 | awk '{ print $2 }' | sort -n |
    awk '{ a[++n] = $1 } END { if (n) print a[int((n + 1) / 2)] }')
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
