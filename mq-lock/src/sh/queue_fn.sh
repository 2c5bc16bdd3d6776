# The line of mq waiters for this lock (BASE/queue/SYSTEM): one ticket file
# per live wait, named so that byte order is the order of service (arrival
# time less 600 s per priority point: a waiter gains a point every ten
# minutes, so no one starves), kept fresh every second by a process that
# lives as long as this shell. A ticket not touched for 3 s is a dead
# wait's and is removed by whoever sees it.
mq_q=@queue_dir@
mq_t=
mq_toucher=
mq_place=
# mq_ahead: how many live tickets are ahead of ours (all of them before we
# have one), in mq_n.
mq_ahead() {
  mq_n=0
  [ -d "$mq_q" ] || return 0
  touch -d '-3 seconds' "$mq_q/.fresh.$mq_me" 2>/dev/null || return 0
  find "$mq_q" -maxdepth 1 -name 'T*' ! -newer "$mq_q/.fresh.$mq_me" -exec rm -f -- {} + 2>/dev/null
  for mq_f in "$mq_q"/T*; do
    [ -e "$mq_f" ] || continue
    [ "$mq_f" = "$mq_t" ] && break
    mq_n=$((mq_n + 1))
  done
}
# mq_join: our ticket, and the process keeping it fresh.
mq_join() {
  mkdir -p "$mq_q" 2>/dev/null && chmod 777 "$mq_q" 2>/dev/null
  mq_now=$(date +%s.%N)
  mq_t=$(printf '%s/T%012d.%s.%s' "$mq_q" $(( ${mq_now%.*} - 600 * @priority@ )) "${mq_now#*.}" "$$")
  printf 'user=%s\nkey=%s\nsince=%s\npriority=%s\npool=%s\n' \
    "$mq_me" @key_text@ "${mq_now%.*}" @priority@ @pool@ > "$mq_t" 2>/dev/null || { mq_t=; return 0; }
  # A program of its own (not a subshell): its command line is not the
  # wait's, which `sem -cancel` looks for.
  sh -c 'while kill -0 "$1" 2>/dev/null; do touch -c -- "$2"; sleep 1; done' \
    mq-ticket "$$" "$mq_t" </dev/null >/dev/null 2>&1 &
  mq_toucher=$!
}
# mq_leave: out of the line.
mq_leave() {
  [ -n "$mq_toucher" ] && kill "$mq_toucher" 2>/dev/null
  [ -n "$mq_t" ] && rm -f -- "$mq_t"
  mq_t=
}
