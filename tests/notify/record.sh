#!/bin/sh
# A command() channel for the tests: keeps what picomon handed over, one
# numbered pair of files per run in the folder $1: the stdin (the
# transition as JSON) and the PICOMON_* environment. Exits with the code
# in the file $1/exit when there is one (0 otherwise).
n=$(ls "$1" | grep -c '^stdin\.')
cat > "$1/stdin.$n"
env | grep '^PICOMON_' | sort > "$1/env.$n"
[ -f "$1/exit" ] && exit "$(cat "$1/exit")"
exit 0
