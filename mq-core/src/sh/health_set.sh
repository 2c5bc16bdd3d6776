# An admin's change of a system's health: the file replaced at once (a
# rename), the change appended to the log.
mq_hd=@health_dir@
mq_hf="$mq_hd"/@system_file@
mkdir -p "$mq_hd" && chmod 777 "$mq_hd" 2>/dev/null
mq_from=good
if [ -f "$mq_hf" ]; then
  while IFS='=' read -r mq_k mq_v; do
    [ "$mq_k" = state ] && mq_from=$mq_v
  done < "$mq_hf"
fi
printf '%s' @content@ > "$mq_hf.$$" && chmod 644 "$mq_hf.$$" && mv -f "$mq_hf.$$" "$mq_hf" || exit 1
printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' @at@ @system@ "$mq_from" @to@ @by@ @reason@ '' >> "$mq_hd/log"
