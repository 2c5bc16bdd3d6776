stty isig -echoctl -echo
@guard@
@reboot@
mq_st=$?
@finish@
