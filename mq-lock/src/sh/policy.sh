# The lab's priority policy, before any wait: BASE/policy, an admin's file
# (owned by root or by BASE's owner, writable by nobody else, anything
# else is not the policy), says the highest priority anyone may ask for
# (max_priority=N) and, if only some may, who (priority_users=a,b). With no
# policy nobody may wait ahead of others; yielding (a negative priority)
# is always allowed.
mq_pm=0 mq_pu=
mq_bo=$(stat --format=%U -- "$b" 2>/dev/null)
case $(stat --format=%U:%A -- "$b/policy" 2>/dev/null) in
  root:-????-??-?|"$mq_bo":-????-??-?)
    if [ ! -L "$b/policy" ]; then
      mq_pt=$(mq_read "$b/policy" 4096)
      if mq_get "$mq_pt" max_priority; then
        case $mq_x in [0-9]|[1-9][0-9]|[1-9][0-9][0-9]|1000) mq_pm=$mq_x ;; esac
      fi
      mq_get "$mq_pt" priority_users && mq_pu=$mq_x
    fi
    ;;
esac
if [ @priority@ -gt "$mq_pm" ]; then
  printf '@refused_mark@%s\n' "priority @priority@ is above this lab's maximum of $mq_pm (set by its admin in $b/policy)"
  exit @code@
fi
if [ -n "$mq_pu" ]; then
  case ",$(printf '%s' "$mq_pu" | tr -s ' ' ','),"  in
    *",$mq_me,"*) ;;
    *)
      printf '@refused_mark@%s\n' "only $(printf '%s' "$mq_pu" | tr -c '[:alnum:],._ -' '?') may ask for a priority here (set by its admin in $b/policy)"
      exit @code@
      ;;
  esac
fi
