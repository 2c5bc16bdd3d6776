# The lock is held and the rest of this session is the caller's: default
# signal handling again (a hangup ends it), the lock kept fresh from the
# background if asked, the mark that hands the session over, then the
# caller's commands (mq_handover, defined above).
trap - HUP INT TERM
@keeper@
echo @holding_mark@
mq_handover
