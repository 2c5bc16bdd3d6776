# One change of a board's health at a time, whoever makes it (an admin's
# set, a run's end under the board's lock): procmail's lockfile on
# BASE/health/.SYSTEM.mutex, tried once a second for 30 s; a mutex older
# than 20 s is a dead holder's and is broken. $1 is the system's file name.
# shellcheck disable=SC2317
mq_hlock() {
  mq_m="$b/health/.$1.mutex"
  command -v lockfile >/dev/null 2>&1 || return 0
  lockfile -1 -r 30 -l 20 -s 0 "$mq_m" 2>/dev/null
}
# shellcheck disable=SC2317
mq_hunlock() { rm -f -- "$mq_m"; }
