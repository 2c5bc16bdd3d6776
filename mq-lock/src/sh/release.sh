# rm's own status: the lock file may well exist again at once, taken by a
# waiter.
rm -f @keyfile@; sync; rm -f @lock@ || exit @still_there@
exit 0
