# The images come through this terminal, raw: no echo, no line editing, no
# signals or flow control from bytes such as ^C or ^S, no CR translation.
# GNU head reads exactly what it is asked for, and each size is checked, so
# that no host can take a byte of the next file.
stty -echo -icanon -isig -iexten -icrnl -ixon -opost min 1 time 0
echo '@ready_mark@'
mq_ok=1
@receive@
echo "@received_mark@ $mq_ok"
[ "$mq_ok" = 1 ] || exit 75
