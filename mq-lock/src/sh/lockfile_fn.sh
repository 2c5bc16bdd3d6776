lockfile() {
  s=8; l=0; r=-1
  while [ $# -gt 1 ]; do
    case "$1" in
      -l) l=$2; shift 2 ;;
      -r) r=$2; shift 2 ;;
      -[0-9]*) s=${1#-}; shift ;;
      *) shift ;;
    esac
  done
  i=0
  while :; do
    if ( set -C; : > "$1" ) 2>/dev/null; then chmod a-w -- "$1"; return 0; fi
    if [ "$l" -gt 0 ]; then
      m=$(stat --format=%Y -- "$1" 2>/dev/null) || continue
      if [ $(( $(date +%s) - m )) -ge "$l" ]; then rm -f -- "$1"; continue; fi
    fi
    if [ "$r" -ge 0 ] && [ "$i" -ge "$r" ]; then echo "lockfile: Sorry, giving up on \"$1\"" >&2; return 73; fi
    i=$((i + 1))
    sleep "$s"
  done
}
