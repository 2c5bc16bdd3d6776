mq_d=$(mktemp -d "${TMPDIR:-/tmp}/mq-run.XXXXXXXX") && printf '@temp_dir_mark@%s\n' "$mq_d"
