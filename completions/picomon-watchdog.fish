complete -c picomon-watchdog -s c -l config -d 'Config file (passed on to picomon)' -r -F
complete -c picomon-watchdog -l user -d 'Started as root: prepare the state directory, then drop to this user' -r
complete -c picomon-watchdog -l pid-file -d 'Write the watchdog\'s pid there, remove it at exit' -r -F
complete -c picomon-watchdog -l restart -d 'Start picomon again when it dies or hangs (backoff 1 s doubling to 5 min)'
complete -c picomon-watchdog -s D -l debug -d 'Debug logging'
complete -c picomon-watchdog -s h -l help -d 'Print help'
complete -c picomon-watchdog -s V -l version -d 'Print version'
