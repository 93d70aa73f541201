#!/bin/sh
# Test plugin for the end-to-end mail tests: appends a line to the file $1
# on every run (so a test can wait for runs), then exits with the status in
# the first line of the file $2 (0 when missing) and prints its second line.
echo run >> "$1"
status=0
text="all fine"
if [ -f "$2" ]; then
    status=$(sed -n 1p "$2")
    t=$(sed -n 2p "$2")
    [ -n "$t" ] && text="$t"
fi
echo "$text"
exit "$status"
