rm -rf -- @dir@ 2>&1; [ -e @dir@ ] && echo mq: still there: @dir@
