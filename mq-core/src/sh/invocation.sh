@receive@
stty icanon isig iexten icrnl ixon opost -echo -echoctl
@guard@
@reboot@
mq_st=$?
@finish@
