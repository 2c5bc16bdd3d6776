# Every lab user can write under BASE and may plant links, FIFOs or junk
# there (docs/PROTOCOL-EXTENSIONS.md, "Sharing the host"). mq's scripts read
# and write mq's own files under BASE only through these: never through a
# link, never waiting on a FIFO, never more than a bound, never a chmod of a
# path they did not just make. `b` is BASE, `mq_me` the user running this.
# (Not every script calls every function: SC2317 is off for them.)
: "${mq_me:=$(id -un)}"
mq_bp=
mq_cr=$(printf '\r')
mq_nl=$(printf '\n.')
mq_nl=${mq_nl%.}
# mq_read FILE BYTES: FILE's first BYTES bytes, if it is a regular file.
# shellcheck disable=SC2317
mq_read() {
  [ -f "$1" ] && [ ! -L "$1" ] &&
    dd if="$1" iflag=nofollow,nonblock,count_bytes count="$2" bs=4096 status=none 2>/dev/null
}
# mq_first FILE: FILE's first line (at most 4 KiB, without a CR) in mq_x;
# empty when FILE is not a regular file.
# shellcheck disable=SC2317
mq_first() {
  mq_x=$(mq_read "$1" 4096) || mq_x=
  mq_x=${mq_x%%"$mq_nl"*}
  mq_x=${mq_x%"$mq_cr"}
}
# mq_tail FILE BYTES: the whole lines among FILE's last BYTES bytes.
# shellcheck disable=SC2317
mq_tail() {
  mq_z=$(stat --format=%s -- "$1" 2>/dev/null) || return 1
  if [ "$mq_z" -le "$2" ]; then
    mq_read "$1" "$2"
  else
    [ -f "$1" ] && [ ! -L "$1" ] &&
      dd if="$1" iflag=nofollow,nonblock,skip_bytes,count_bytes skip=$((mq_z - $2)) \
        count="$2" bs=4096 status=none 2>/dev/null | sed 1d
  fi
}
# mq_at DIR: makes DIR (BASE, or a directory under it) the working
# directory of the calling subshell, pinned: DIR is a real directory and no
# part of its path below BASE is a link (its physical path is BASE's plus
# the rest), so that what is planted later cannot move it.
# shellcheck disable=SC2317
mq_at() {
  [ -n "$mq_bp" ] || mq_bp=$(cd -P -- "$b" 2>/dev/null && pwd -P) || return 1
  mq_r=${1#"$b"}
  mq_r=/${mq_r#/}
  mq_r=${mq_r%/}
  [ -z "$mq_r" ] || [ ! -L "$1" ] || return 1
  cd -P -- "$1" 2>/dev/null && [ "$(pwd -P)" = "${mq_bp%/}$mq_r" ]
}
# mq_in DIR [MODE]: mq_at DIR, made first (mode MODE, default 1777) inside
# its pinned parent if missing. One of ours that should be sticky and is
# not (made by mq before version 5) gets the sticky bit.
# shellcheck disable=SC2317
mq_in() {
  mq_at "${1%/*}" || return 1
  mq_d1=${1##*/}
  [ -L "$mq_d1" ] && return 1
  [ -d "$mq_d1" ] || mkdir -m "${2:-1777}" -- "$mq_d1" 2>/dev/null || [ -d "$mq_d1" ] || return 1
  mq_want=$(pwd -P)/$mq_d1
  mq_want=${mq_want#/}
  cd -P -- "$mq_d1" 2>/dev/null && [ "$(pwd -P)" = "/$mq_want" ] || return 1
  case ${2:-1777}:$(stat --format=%a:%U -- . 2>/dev/null) in
    1777:1???:*|777:*) ;;
    1777:*:"$mq_me") chmod +t . 2>/dev/null ;;
  esac
}
# mq_own NAME: NAME (in the working directory) is absent, or a regular file
# of ours with no other link to it.
# shellcheck disable=SC2317
mq_own() {
  if [ -e "$1" ] || [ -L "$1" ]; then
    [ -f "$1" ] && [ ! -L "$1" ] && [ "$(stat --format=%h:%U -- "$1" 2>/dev/null)" = "1:$mq_me" ]
  fi
}
# mq_append NAME LINE: LINE appended to NAME (in the working directory; one
# of ours, made mode 0644 if missing).
# shellcheck disable=SC2317
mq_append() {
  mq_own "$1" && printf '%s\n' "$2" |
    (umask 022 && dd of="$1" oflag=append,nofollow,nonblock conv=notrunc status=none 2>/dev/null)
}
# mq_replace NAME: NAME (in the working directory) replaced whole by a new
# file, mode 0644, holding what comes on stdin: written under a fresh name
# that nothing can be planted at, then renamed over NAME (whatever NAME is;
# a directory there makes it fail).
# shellcheck disable=SC2317
mq_replace() {
  mq_t=".$1.$$.$(date +%N)"
  (umask 022 && dd of="$mq_t" conv=excl status=none 2>/dev/null) &&
    mv -fT -- "$mq_t" "$1" 2>/dev/null && return 0
  rm -f -- "$mq_t" 2>/dev/null
  return 1
}
# mq_get TEXT KEY: the value of TEXT's first line KEY=VALUE in mq_x; fails
# (mq_x empty) when there is none.
# shellcheck disable=SC2317
mq_get() {
  mq_x='' mq_g=$1
  while [ -n "$mq_g" ]; do
    mq_l=${mq_g%%"$mq_nl"*}
    case $mq_g in *"$mq_nl"*) mq_g=${mq_g#*"$mq_nl"} ;; *) mq_g= ;; esac
    case $mq_l in "$2="*) mq_x=${mq_l#"$2="}; return 0 ;; esac
  done
  return 1
}
