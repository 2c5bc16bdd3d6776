# mq_live DIR NOW: the names of DIR's live tickets, in the order of service.
mq_live() {
  find "$1" -mindepth 1 -maxdepth 1 -type f -regextype posix-extended \
    -regex '.*/T[0-9]{12}\.[0-9]{1,9}\.[0-9]{1,10}' \
    -newermt "@$(($2 - 3))" ! -newermt "@$(($2 + 5))" -printf '%f\n' 2>/dev/null |
    LC_ALL=C sort
}
