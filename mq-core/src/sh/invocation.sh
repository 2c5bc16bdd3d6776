stty isig -echoctl -echo; @reboot@
