rm -rf -- @dir@ 2>&1; [ -e @dir@ ] && echo '@still_there_mark@'@dir@
