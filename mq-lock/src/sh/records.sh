for s in @systems@; do mq_rec "$s"; done
