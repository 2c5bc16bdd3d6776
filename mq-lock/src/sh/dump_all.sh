cd "$b" || exit 3
for f in *.lock; do
  [ -e "$f" ] || continue
  mq_rec "${f%.lock}"
done
