#!/bin/sh
# A command() channel that never ends: writes its pid to the file $1, then
# waits forever (picomon must kill it at its timeout or at shutdown).
echo $$ > "$1.tmp" && mv "$1.tmp" "$1"
exec sleep 100000
