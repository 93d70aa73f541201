# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_picomon_global_optspecs
    string join \n c/config= 1/one notify outputs D/debug check-config json test-mail send state-dir= pid-file= user= only= h/help V/version
end

function __fish_picomon_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_picomon_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_picomon_using_subcommand
    set -l cmd (__fish_picomon_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c picomon -n "__fish_picomon_needs_command" -s c -l config -d 'Config file; else $PICOMON_CONFIG, else ./config.rhai, else the only *.rhai in /etc/picomon (example.rhai aside)' -r -F
complete -c picomon -n "__fish_picomon_needs_command" -l state-dir -d 'Overrides config.state_dir (subcommands: where the daemon\'s socket is)' -r -f -a "(__fish_complete_directories)"
complete -c picomon -n "__fish_picomon_needs_command" -l pid-file -d 'Write the pid there, remove it at exit' -r -F
complete -c picomon -n "__fish_picomon_needs_command" -l user -d 'Started as root: drop to this user before any check runs' -r -f -a "(__fish_complete_users)"
complete -c picomon -n "__fish_picomon_needs_command" -l only -d 'With -1: only the checks whose name, identity or target matches this glob' -r
complete -c picomon -n "__fish_picomon_needs_command" -s 1 -l one -d 'Run every check once now, print each result, exit with the worst status'
complete -c picomon -n "__fish_picomon_needs_command" -l notify -d 'With -1: mail the problems found'
complete -c picomon -n "__fish_picomon_needs_command" -l outputs -d 'With -1: send every result through config.outputs (pcrunner\'s cron use)'
complete -c picomon -n "__fish_picomon_needs_command" -s D -l debug -d 'Debug logging (RUST_LOG still wins where set)'
complete -c picomon -n "__fish_picomon_needs_command" -l check-config -d 'Evaluate and validate the config, print a summary, exit'
complete -c picomon -n "__fish_picomon_needs_command" -l json -d 'With -1 or --check-config: print one JSON document instead of text'
complete -c picomon -n "__fish_picomon_needs_command" -l test-mail -d 'Send one test mail through the configured path and print the answer'
complete -c picomon -n "__fish_picomon_needs_command" -l send -d 'Read passive result lines from stdin and forward them to the outputs'
complete -c picomon -n "__fish_picomon_needs_command" -s h -l help -d 'Print help'
complete -c picomon -n "__fish_picomon_needs_command" -s V -l version -d 'Print version'
complete -c picomon -n "__fish_picomon_needs_command" -f -a "status" -d 'What every check is doing now, or one check in full; exit 0 when nothing is in PROBLEM, 1 when something is, 3 when no daemon answers'
complete -c picomon -n "__fish_picomon_needs_command" -f -a "ack" -d '"I\'m on it": acknowledge a check in PROBLEM'
complete -c picomon -n "__fish_picomon_needs_command" -f -a "unack" -d 'End a check\'s acknowledgement: its mails go out again'
complete -c picomon -n "__fish_picomon_needs_command" -f -a "mail-in" -d 'Read one mail on stdin (an MTA alias pipes replies to alerts here) and apply the command on its first line: ack, ack sticky, silence DURATION, unack; exit 75 when the daemon cannot be reached'
complete -c picomon -n "__fish_picomon_needs_command" -f -a "silence" -d 'No mail for matching checks (a glob on name, identity or target)'
complete -c picomon -n "__fish_picomon_needs_command" -f -a "silences" -d 'The silences in force'
complete -c picomon -n "__fish_picomon_needs_command" -f -a "unsilence" -d 'End a silence now (its held Problems are mailed if still failing)'
complete -c picomon -n "__fish_picomon_needs_command" -f -a "run" -d 'Run one check now in the daemon and print its result line (exit: its status code)'
complete -c picomon -n "__fish_picomon_needs_command" -f -a "reload" -d 'Reload the config; prints what changed or the error that kept the old one'
complete -c picomon -n "__fish_picomon_needs_command" -f -a "ping" -d 'Tell a heartbeat check "it ran" (exit 1 when not recorded); with `-- COMMAND ARGS...`: ping --start, run COMMAND, ping with its exit status and the tail of its output'
complete -c picomon -n "__fish_picomon_needs_command" -f -a "history" -d 'The outages in the log (state_dir/history), newest first; needs no running daemon'
complete -c picomon -n "__fish_picomon_needs_command" -f -a "simulate" -d 'Run this config\'s loop on a simulated clock over a story and print every mail it would send (time, recipients, Cc, subject, thread); nothing runs, nothing is sent'
complete -c picomon -n "__fish_picomon_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c picomon -n "__fish_picomon_using_subcommand status" -l only -d 'Only checks whose name, identity, target or "NAME on TARGET" matches this glob (`*`, `?`)' -r
complete -c picomon -n "__fish_picomon_using_subcommand status" -s c -l config -d 'Config file; else $PICOMON_CONFIG, else ./config.rhai, else the only *.rhai in /etc/picomon (example.rhai aside)' -r -F
complete -c picomon -n "__fish_picomon_using_subcommand status" -l state-dir -d 'Overrides config.state_dir (subcommands: where the daemon\'s socket is)' -r -f -a "(__fish_complete_directories)"
complete -c picomon -n "__fish_picomon_using_subcommand status" -l json -d 'JSON instead of the table ("daemon": false and the saved state when no daemon answers)'
complete -c picomon -n "__fish_picomon_using_subcommand status" -l problems -d 'Only checks that are failing (retrying or in PROBLEM)'
complete -c picomon -n "__fish_picomon_using_subcommand status" -s h -l help -d 'Print help'
complete -c picomon -n "__fish_picomon_using_subcommand ack" -s m -l message -d 'A comment for the check\'s mail thread' -r
complete -c picomon -n "__fish_picomon_using_subcommand ack" -l for -d 'End the ack after this long (90s, 30m, 2h, 1d; at most 100 years)' -r
complete -c picomon -n "__fish_picomon_using_subcommand ack" -s c -l config -d 'Config file; else $PICOMON_CONFIG, else ./config.rhai, else the only *.rhai in /etc/picomon (example.rhai aside)' -r -F
complete -c picomon -n "__fish_picomon_using_subcommand ack" -l state-dir -d 'Overrides config.state_dir (subcommands: where the daemon\'s socket is)' -r -f -a "(__fish_complete_directories)"
complete -c picomon -n "__fish_picomon_using_subcommand ack" -l sticky -d 'Keep the ack through status changes, until recovery'
complete -c picomon -n "__fish_picomon_using_subcommand ack" -s h -l help -d 'Print help'
complete -c picomon -n "__fish_picomon_using_subcommand unack" -s c -l config -d 'Config file; else $PICOMON_CONFIG, else ./config.rhai, else the only *.rhai in /etc/picomon (example.rhai aside)' -r -F
complete -c picomon -n "__fish_picomon_using_subcommand unack" -l state-dir -d 'Overrides config.state_dir (subcommands: where the daemon\'s socket is)' -r -f -a "(__fish_complete_directories)"
complete -c picomon -n "__fish_picomon_using_subcommand unack" -s h -l help -d 'Print help'
complete -c picomon -n "__fish_picomon_using_subcommand mail-in" -s c -l config -d 'Config file; else $PICOMON_CONFIG, else ./config.rhai, else the only *.rhai in /etc/picomon (example.rhai aside)' -r -F
complete -c picomon -n "__fish_picomon_using_subcommand mail-in" -l state-dir -d 'Overrides config.state_dir (subcommands: where the daemon\'s socket is)' -r -f -a "(__fish_complete_directories)"
complete -c picomon -n "__fish_picomon_using_subcommand mail-in" -s h -l help -d 'Print help'
complete -c picomon -n "__fish_picomon_using_subcommand silence" -l for -d 'How long (90s, 30m, 2h, 1d; at most 100 years)' -r
complete -c picomon -n "__fish_picomon_using_subcommand silence" -s m -l message -d 'Why: shown by `picomon silences` and logged with the caller\'s name' -r
complete -c picomon -n "__fish_picomon_using_subcommand silence" -s c -l config -d 'Config file; else $PICOMON_CONFIG, else ./config.rhai, else the only *.rhai in /etc/picomon (example.rhai aside)' -r -F
complete -c picomon -n "__fish_picomon_using_subcommand silence" -l state-dir -d 'Overrides config.state_dir (subcommands: where the daemon\'s socket is)' -r -f -a "(__fish_complete_directories)"
complete -c picomon -n "__fish_picomon_using_subcommand silence" -s h -l help -d 'Print help'
complete -c picomon -n "__fish_picomon_using_subcommand silences" -s c -l config -d 'Config file; else $PICOMON_CONFIG, else ./config.rhai, else the only *.rhai in /etc/picomon (example.rhai aside)' -r -F
complete -c picomon -n "__fish_picomon_using_subcommand silences" -l state-dir -d 'Overrides config.state_dir (subcommands: where the daemon\'s socket is)' -r -f -a "(__fish_complete_directories)"
complete -c picomon -n "__fish_picomon_using_subcommand silences" -l json -d 'JSON instead of one line per silence'
complete -c picomon -n "__fish_picomon_using_subcommand silences" -s h -l help -d 'Print help'
complete -c picomon -n "__fish_picomon_using_subcommand unsilence" -s c -l config -d 'Config file; else $PICOMON_CONFIG, else ./config.rhai, else the only *.rhai in /etc/picomon (example.rhai aside)' -r -F
complete -c picomon -n "__fish_picomon_using_subcommand unsilence" -l state-dir -d 'Overrides config.state_dir (subcommands: where the daemon\'s socket is)' -r -f -a "(__fish_complete_directories)"
complete -c picomon -n "__fish_picomon_using_subcommand unsilence" -s h -l help -d 'Print help'
complete -c picomon -n "__fish_picomon_using_subcommand run" -s c -l config -d 'Config file; else $PICOMON_CONFIG, else ./config.rhai, else the only *.rhai in /etc/picomon (example.rhai aside)' -r -F
complete -c picomon -n "__fish_picomon_using_subcommand run" -l state-dir -d 'Overrides config.state_dir (subcommands: where the daemon\'s socket is)' -r -f -a "(__fish_complete_directories)"
complete -c picomon -n "__fish_picomon_using_subcommand run" -l nagios-json -d 'Run it here, without a daemon, as a Nagios plugin: the summary, " | ", the JSON record on one line, then the long output; exit with the check\'s status'
complete -c picomon -n "__fish_picomon_using_subcommand run" -l nagios-json-base64 -d 'Like --nagios-json, with the JSON record base64-encoded'
complete -c picomon -n "__fish_picomon_using_subcommand run" -s h -l help -d 'Print help'
complete -c picomon -n "__fish_picomon_using_subcommand reload" -s c -l config -d 'Config file; else $PICOMON_CONFIG, else ./config.rhai, else the only *.rhai in /etc/picomon (example.rhai aside)' -r -F
complete -c picomon -n "__fish_picomon_using_subcommand reload" -l state-dir -d 'Overrides config.state_dir (subcommands: where the daemon\'s socket is)' -r -f -a "(__fish_complete_directories)"
complete -c picomon -n "__fish_picomon_using_subcommand reload" -s h -l help -d 'Print help'
complete -c picomon -n "__fish_picomon_using_subcommand ping" -l status -d 'The job\'s exit status: 0 is success, anything else a failure' -r
complete -c picomon -n "__fish_picomon_using_subcommand ping" -s m -l message -d 'A message for the check\'s output and mails' -r
complete -c picomon -n "__fish_picomon_using_subcommand ping" -s c -l config -d 'Config file; else $PICOMON_CONFIG, else ./config.rhai, else the only *.rhai in /etc/picomon (example.rhai aside)' -r -F
complete -c picomon -n "__fish_picomon_using_subcommand ping" -l state-dir -d 'Overrides config.state_dir (subcommands: where the daemon\'s socket is)' -r -f -a "(__fish_complete_directories)"
complete -c picomon -n "__fish_picomon_using_subcommand ping" -l fail -d 'The job failed'
complete -c picomon -n "__fish_picomon_using_subcommand ping" -l start -d 'The job starts now; its end must follow within the check\'s grace'
complete -c picomon -n "__fish_picomon_using_subcommand ping" -s h -l help -d 'Print help'
complete -c picomon -n "__fish_picomon_using_subcommand history" -l since -d 'Outages that ended within this long (90s, 30m, 2h, 30d) or are ongoing' -r
complete -c picomon -n "__fish_picomon_using_subcommand history" -s c -l config -d 'Config file; else $PICOMON_CONFIG, else ./config.rhai, else the only *.rhai in /etc/picomon (example.rhai aside)' -r -F
complete -c picomon -n "__fish_picomon_using_subcommand history" -l state-dir -d 'Overrides config.state_dir (subcommands: where the daemon\'s socket is)' -r -f -a "(__fish_complete_directories)"
complete -c picomon -n "__fish_picomon_using_subcommand history" -l json -d 'JSON instead of the table'
complete -c picomon -n "__fish_picomon_using_subcommand history" -l csv -d 'Availability per check over --since instead (worst first: availability, outages, downtime, longest, mean time to recovery), as CSV: the availability mail\'s attachment'
complete -c picomon -n "__fish_picomon_using_subcommand history" -s h -l help -d 'Print help'
complete -c picomon -n "__fish_picomon_using_subcommand simulate" -l until -d 'Simulate this long (default: an hour after the last event)' -r
complete -c picomon -n "__fish_picomon_using_subcommand simulate" -s c -l config -d 'Config file; else $PICOMON_CONFIG, else ./config.rhai, else the only *.rhai in /etc/picomon (example.rhai aside)' -r -F
complete -c picomon -n "__fish_picomon_using_subcommand simulate" -l state-dir -d 'Overrides config.state_dir (subcommands: where the daemon\'s socket is)' -r -f -a "(__fish_complete_directories)"
complete -c picomon -n "__fish_picomon_using_subcommand simulate" -l json -d 'JSON instead of the table'
complete -c picomon -n "__fish_picomon_using_subcommand simulate" -s h -l help -d 'Print help'
complete -c picomon -n "__fish_picomon_using_subcommand __complete" -s c -l config -d 'Config file; else $PICOMON_CONFIG, else ./config.rhai, else the only *.rhai in /etc/picomon (example.rhai aside)' -r -F
complete -c picomon -n "__fish_picomon_using_subcommand __complete" -l state-dir -d 'Overrides config.state_dir (subcommands: where the daemon\'s socket is)' -r -f -a "(__fish_complete_directories)"
complete -c picomon -n "__fish_picomon_using_subcommand __complete" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c picomon -n "__fish_picomon_using_subcommand help; and not __fish_seen_subcommand_from status ack unack mail-in silence silences unsilence run reload ping history simulate __complete help" -f -a "status" -d 'What every check is doing now, or one check in full; exit 0 when nothing is in PROBLEM, 1 when something is, 3 when no daemon answers'
complete -c picomon -n "__fish_picomon_using_subcommand help; and not __fish_seen_subcommand_from status ack unack mail-in silence silences unsilence run reload ping history simulate __complete help" -f -a "ack" -d '"I\'m on it": acknowledge a check in PROBLEM'
complete -c picomon -n "__fish_picomon_using_subcommand help; and not __fish_seen_subcommand_from status ack unack mail-in silence silences unsilence run reload ping history simulate __complete help" -f -a "unack" -d 'End a check\'s acknowledgement: its mails go out again'
complete -c picomon -n "__fish_picomon_using_subcommand help; and not __fish_seen_subcommand_from status ack unack mail-in silence silences unsilence run reload ping history simulate __complete help" -f -a "mail-in" -d 'Read one mail on stdin (an MTA alias pipes replies to alerts here) and apply the command on its first line: ack, ack sticky, silence DURATION, unack; exit 75 when the daemon cannot be reached'
complete -c picomon -n "__fish_picomon_using_subcommand help; and not __fish_seen_subcommand_from status ack unack mail-in silence silences unsilence run reload ping history simulate __complete help" -f -a "silence" -d 'No mail for matching checks (a glob on name, identity or target)'
complete -c picomon -n "__fish_picomon_using_subcommand help; and not __fish_seen_subcommand_from status ack unack mail-in silence silences unsilence run reload ping history simulate __complete help" -f -a "silences" -d 'The silences in force'
complete -c picomon -n "__fish_picomon_using_subcommand help; and not __fish_seen_subcommand_from status ack unack mail-in silence silences unsilence run reload ping history simulate __complete help" -f -a "unsilence" -d 'End a silence now (its held Problems are mailed if still failing)'
complete -c picomon -n "__fish_picomon_using_subcommand help; and not __fish_seen_subcommand_from status ack unack mail-in silence silences unsilence run reload ping history simulate __complete help" -f -a "run" -d 'Run one check now in the daemon and print its result line (exit: its status code)'
complete -c picomon -n "__fish_picomon_using_subcommand help; and not __fish_seen_subcommand_from status ack unack mail-in silence silences unsilence run reload ping history simulate __complete help" -f -a "reload" -d 'Reload the config; prints what changed or the error that kept the old one'
complete -c picomon -n "__fish_picomon_using_subcommand help; and not __fish_seen_subcommand_from status ack unack mail-in silence silences unsilence run reload ping history simulate __complete help" -f -a "ping" -d 'Tell a heartbeat check "it ran" (exit 1 when not recorded); with `-- COMMAND ARGS...`: ping --start, run COMMAND, ping with its exit status and the tail of its output'
complete -c picomon -n "__fish_picomon_using_subcommand help; and not __fish_seen_subcommand_from status ack unack mail-in silence silences unsilence run reload ping history simulate __complete help" -f -a "history" -d 'The outages in the log (state_dir/history), newest first; needs no running daemon'
complete -c picomon -n "__fish_picomon_using_subcommand help; and not __fish_seen_subcommand_from status ack unack mail-in silence silences unsilence run reload ping history simulate __complete help" -f -a "simulate" -d 'Run this config\'s loop on a simulated clock over a story and print every mail it would send (time, recipients, Cc, subject, thread); nothing runs, nothing is sent'
complete -c picomon -n "__fish_picomon_using_subcommand help; and not __fish_seen_subcommand_from status ack unack mail-in silence silences unsilence run reload ping history simulate __complete help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'

# Check names and silence ids, from picomon itself (see picomon(1)).
function __fish_picomon_ask
    set -l tokens (commandline -opc)
    set -l pass
    for i in (seq 2 (count $tokens))
        switch $tokens[$i]
            case -c --config --state-dir
                set -a pass $tokens[$i] $tokens[(math $i + 1)]
            case '--config=*' '--state-dir=*'
                set -a pass $tokens[$i]
        end
    end
    $tokens[1] __complete $argv[1] $pass 2>/dev/null
end
complete -c picomon -n "__fish_seen_subcommand_from status ack unack run silence ping" -f -a "(__fish_picomon_ask checks)"
complete -c picomon -n "__fish_seen_subcommand_from unsilence" -f -a "(__fish_picomon_ask silences)"
complete -c picomon -l only -x -a "(__fish_picomon_ask checks)"
