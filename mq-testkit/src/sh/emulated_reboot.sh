#!/bin/sh
dir=$(dirname "$0")
board=$(basename "$dir")
printf '%s\0' "$@" > "$dir/last-args"
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
echo $$ > "$dir/pid"
rm -f "$dir/hup"
trap 'touch "$dir/hup"; exit 129' HUP INT TERM
: > "$log"
say() { printf '%s\r\n' "$1"; printf '%s\n' "$1" >> "$log"; }
start=$(date +%s)
timed_out() { [ "$to" -ge 0 ] && [ $(( $(date +%s) - start )) -ge "$to" ]; }
hang() { while :; do if timed_out; then say "[[Timeout]]"; exit 4; fi; sleep 0.1; done; }
pause() { end=$(( $(date +%s) + $1 )); while [ "$(date +%s)" -lt "$end" ]; do if timed_out; then say "[[Timeout]]"; exit 4; fi; sleep 0.1; done; }
say "[$board] power on"
[ -n "$linux" ] && say "[$board] PXE booting Linux"
[ -n "$dtb" ] && say "[$board] device tree: $(cat "$dtb")"
[ -n "$bit" ] && say "[$board] bitstream: $(cat "$bit")"
script="$dir/console.$$"
{ cat -- "$kern"; echo; [ -n "$root" ] && cat -- "$root"; echo; } > "$script"
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
  esac
  say "$line"
  if [ -n "$err" ] && printf '%s\n' "$line" | grep -qF -- "$err"; then exit 3; fi
  if [ -n "$comp" ] && printf '%s\n' "$line" | grep -qF -- "$comp"; then
    if [ -n "$alive" ]; then
      while IFS= read -r typed; do say "echo: $typed"; done
    fi
    exit 0
  fi
done
hang
