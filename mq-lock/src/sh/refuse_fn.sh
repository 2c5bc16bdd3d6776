# A caller's precheck refuses the acquire, before any wait, with a reason.
mq_refuse() {
  printf '@refused_mark@%s\n' "$1"
  exit @refused@
}
