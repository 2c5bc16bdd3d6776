@receive@
stty icanon isig iexten icrnl ixon opost -echo -echoctl
@guard@
# The runner's stderr goes to the console through descriptor 3, and the
# shell's own stderr is closed over it: a shell reports a child killed by a
# signal with its command line (which holds the completion text) on its own
# stderr, and nothing after the runner's end may reach the console.
{ sh -c 'exec 2>&3 3>&-; exec "$@"' mq-runner @reboot@; } 3>&2 2>/dev/null
mq_st=$?
@finish@
