#!/bin/sh
# A scripted board, installed as TFTPBOOT/MACHINE/reboot (PROTOCOL.md's
# runner interface). Its console is the file `console` beside it when there
# is one (mq_core::testing), else the uploaded images' text (mq-testkit).
# Every line is printed (and logged) in turn except these directives:
# `@sleep N` pauses, `@hang` prints nothing more, `@exit N` makes the board
# die with status N, `@kill` makes it die of SIGKILL, `@deaf` makes it
# ignore -t from then on, `@litter` leaves a directory beside its log that
# its user cannot empty.
#
# The completion text ends the run with 0, the error text with 3, the
# timeout with `[[Timeout]]` and 4 (both 1 when the file `old-statuses` is
# beside the board, as the old lab's runner exits); with -a the board then echoes what is
# typed (`echo: LINE`) until its input ends. Texts are fixed strings, or
# extended regular expressions when the file `ere` is beside the board.
#
# The board's directory records `last-args` (NUL-separated), `pid`, `hup`
# (hung up) and `powered-off`; when it has a `calls` directory, each run
# adds `calls/TIME-PID/` with its `args` and copies of its images.
dir=$(dirname "$0")
board=$(basename "$dir")
printf '%s\0' "$@" > "$dir/last-args"
call=
if [ -d "$dir/calls" ]; then
  call="$dir/calls/$(date +%s%N)-$$"
  mkdir -p "$call" && printf '%s\0' "$@" > "$call/args"
fi
log=/dev/null; comp=; to=-1; err=; kern=; root=; alive=; linux=; dtb=; bit=
while [ $# -gt 0 ]; do
  case "$1" in
    -L) linux=1 ;;
    -b) dtb=$2; shift ;;
    --bitstream) bit=$2; shift ;;
    -l) log=$2; shift ;;
    -c) comp=$2; shift ;;
    -t) to=$2; shift ;;
    -e) err=$2; shift ;;
    -k) kern=$2; shift ;;
    -u) root=$2; shift ;;
    -a|-i) alive=1 ;;
    --shutdown) echo "[$board] powered off"; touch "$dir/powered-off"; exit 0 ;;
    *) echo "reboot: unknown option $1" >&2; exit 64 ;;
  esac
  shift
done
if [ -n "$call" ]; then
  for f in kernel:"$kern" rootserver:"$root" dtb:"$dtb" bitstream:"$bit"; do
    [ -n "${f#*:}" ] && cp -- "${f#*:}" "$call/${f%%:*}"
  done
fi
mode=-F
[ -e "$dir/ere" ] && mode=-E
echo $$ > "$dir/pid"
rm -f "$dir/hup"
trap 'touch "$dir/hup"; exit 129' HUP INT TERM
verdict() { [ -e "$dir/old-statuses" ] && exit 1; exit "$1"; }
: > "$log"
say() { printf '%s\r\n' "$1"; printf '%s\n' "$1" >> "$log"; }
start=$(date +%s)
timed_out() { [ "$to" -ge 0 ] && [ $(( $(date +%s) - start )) -ge "$to" ]; }
hang() { while :; do if timed_out; then say "[[Timeout]]"; verdict 4; fi; sleep 0.1; done; }
pause() {
  case "$1" in *.*) sleep "$1"; timed_out && { say "[[Timeout]]"; verdict 4; }; return ;; esac
  end=$(( $(date +%s) + $1 )); while [ "$(date +%s)" -lt "$end" ]; do if timed_out; then say "[[Timeout]]"; verdict 4; fi; sleep 0.1; done
}
say "[$board] power on"
[ -n "$linux" ] && say "[$board] PXE booting Linux"
[ -n "$dtb" ] && say "[$board] device tree: $(cat "$dtb")"
[ -n "$bit" ] && say "[$board] bitstream: $(cat "$bit")"
script="$dir/console.$$"
if [ -e "$dir/console" ]; then
  cat -- "$dir/console" > "$script"
else
  { cat -- "$kern"; echo; [ -n "$root" ] && cat -- "$root"; echo; } > "$script"
fi
# Read from an open descriptor, so the file can go at once.
exec 3< "$script"
rm -f "$script"
while IFS= read -r line <&3 || [ -n "$line" ]; do
  case "$line" in
    "@sleep "*) pause "${line#@sleep }"; continue ;;
    "@deaf") to=-1; continue ;;
    "@litter") l=$(dirname -- "$log")/stuck; mkdir -p "$l" && : > "$l/file" && chmod 555 "$l"; continue ;;
    "@hang") hang ;;
    "@exit "*) exit "${line#@exit }" ;;
    "@kill") kill -9 $$ ;;
  esac
  say "$line"
  if [ -n "$err" ] && printf '%s\n' "$line" | grep -q "$mode" -- "$err"; then verdict 3; fi
  if [ -n "$comp" ] && printf '%s\n' "$line" | grep -q "$mode" -- "$comp"; then
    if [ -n "$alive" ]; then
      while IFS= read -r typed; do say "echo: $typed"; done
    fi
    exit 0
  fi
done
hang
