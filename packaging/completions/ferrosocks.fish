# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_ferrosocks_global_optspecs
    string join \n f= d= V p= D N= n v/version L/license grace-period= h/help
end

function __fish_ferrosocks_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_ferrosocks_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_ferrosocks_using_subcommand
    set -l cmd (__fish_ferrosocks_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c ferrosocks -n "__fish_ferrosocks_needs_command" -s f -d 'Configuration file (Dante sockd.conf syntax)' -r -F
complete -c ferrosocks -n "__fish_ferrosocks_needs_command" -s d -d 'Debug level 0, 1 or 2; wins over "debug:" in the file' -r
complete -c ferrosocks -n "__fish_ferrosocks_needs_command" -s p -d 'Write the process id to FILE' -r -F
complete -c ferrosocks -n "__fish_ferrosocks_needs_command" -s N -d 'Number of processes (accepted for Dante compatibility; ferrosocks uses threads)' -r
complete -c ferrosocks -n "__fish_ferrosocks_needs_command" -l grace-period -d 'Seconds open sessions get to finish after SIGTERM before they are cut' -r
complete -c ferrosocks -n "__fish_ferrosocks_needs_command" -s V -d 'Check the configuration and exit: 0 if it is good, else print every error'
complete -c ferrosocks -n "__fish_ferrosocks_needs_command" -s D -d 'Detach from the terminal and run in the background'
complete -c ferrosocks -n "__fish_ferrosocks_needs_command" -s n -d 'Disable TCP keep-alive (accepted for Dante compatibility)'
complete -c ferrosocks -n "__fish_ferrosocks_needs_command" -s v -l version -d 'Print the version and exit'
complete -c ferrosocks -n "__fish_ferrosocks_needs_command" -s L -l license -d 'Print the license and exit'
complete -c ferrosocks -n "__fish_ferrosocks_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ferrosocks -n "__fish_ferrosocks_needs_command" -f -a "migrate" -d 'Print a Dante configuration rewritten as one ferrosocks runs'
complete -c ferrosocks -n "__fish_ferrosocks_needs_command" -f -a "log" -d 'Read Dante and ferrosocks logs: traffic accounting, conversion, filtering'
complete -c ferrosocks -n "__fish_ferrosocks_needs_command" -f -a "collect" -d 'Receive shipped log files and write one multilog directory per sender'
complete -c ferrosocks -n "__fish_ferrosocks_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand migrate" -l from-dante -d 'The Dante configuration to read (e.g. /etc/danted.conf)' -r -F
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand migrate" -s o -l output -d 'Write the result to FILE (only when there is no error) instead of stdout' -r -F
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand migrate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and not __fish_seen_subcommand_from stats convert grep help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and not __fish_seen_subcommand_from stats convert grep help" -f -a "stats" -d 'Per-group traffic: sessions, blocked requests, bytes each way, durations'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and not __fish_seen_subcommand_from stats convert grep help" -f -a "convert" -d 'Rewrite text log lines as ferrosocks\' JSON lines (or CSV rows)'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and not __fish_seen_subcommand_from stats convert grep help" -f -a "grep" -d 'Print the traffic records whose fields match, as they are in the input'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and not __fish_seen_subcommand_from stats convert grep help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from stats" -l by -d 'Group by this; repeat for several (columns in the order given)' -r -f -a "user\t'The authenticated user (- when none)'
client\t'The client\'s address'
target\t'The target\'s address (or name)'
port\t'The target\'s port'
rule\t'socks-rule #N or client-rule #N'
day\t'YYYY-MM-DD (UTC)'
hour\t'YYYY-MM-DDTHH (UTC)'"
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from stats" -l format -d 'Output format' -r -f -a "table\t'Aligned columns and a total row'
csv\t'Comma-separated values with a header row'
json\t'One JSON object per group and line'"
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from stats" -l sort -d 'Row order' -r -f -a "key\t'By the group\'s key'
sessions\t'Most sessions first'
bytes\t'Most bytes first'
blocked\t'Most blocked requests first'"
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from stats" -l top -d 'Only the first N rows (after sorting)' -r
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from stats" -l since -d 'Only records at or after T (YYYY-MM-DD[THH:MM[:SS]][Z|±HH:MM] or @SECONDS; UTC)' -r
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from stats" -l until -d 'Only records before T' -r
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from stats" -l no-progress -d 'No progress bar (shown on a terminal when several files are read)'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from stats" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from convert" -l to -d 'Output format' -r -f -a "json\t'ferrosocks\' JSON lines'
csv\t'One CSV row per traffic record, with a header row'"
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from convert" -l since -d 'Only records at or after T (YYYY-MM-DD[THH:MM[:SS]][Z|±HH:MM] or @SECONDS; UTC)' -r
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from convert" -l until -d 'Only records before T' -r
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from convert" -l strict -d 'Count and skip lines that are not traffic records instead of passing them on'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from convert" -l no-progress -d 'No progress bar (shown on a terminal when several files are read)'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from convert" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from grep" -l user -d 'The user name' -r
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from grep" -l client -d 'The client\'s address or CIDR block' -r
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from grep" -l target -d 'The target: an address, a CIDR block or a host name' -r
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from grep" -l port -d 'The target\'s port' -r
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from grep" -l verdict -d 'pass or block' -r
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from grep" -l rule -d 'The rule number' -r
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from grep" -l command -d 'accept, connect, bind, bindreply, udpassociate, udpreply or hostid' -r
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from grep" -l phase -d 'start, io, transient, stop, summary or interim' -r
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from grep" -l since -d 'Only records at or after T (YYYY-MM-DD[THH:MM[:SS]][Z|±HH:MM] or @SECONDS; UTC)' -r
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from grep" -l until -d 'Only records before T' -r
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from grep" -l json -d 'Print the matching records as JSON lines instead of as they are'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from grep" -l no-progress -d 'No progress bar (shown on a terminal when several files are read)'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from grep" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from help" -f -a "stats" -d 'Per-group traffic: sessions, blocked requests, bytes each way, durations'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from help" -f -a "convert" -d 'Rewrite text log lines as ferrosocks\' JSON lines (or CSV rows)'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from help" -f -a "grep" -d 'Print the traffic records whose fields match, as they are in the input'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand log; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand collect" -l listen -d 'Address and port to listen on (e.g. 0.0.0.0:10116; port 0: the kernel picks)' -r
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand collect" -l dir -d 'Directory holding all/ and one directory per sender IP' -r -F
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand collect" -l size -d 'Rotate each directory\'s current past this many bytes (multilog\'s s)' -r
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand collect" -l count -d 'Files kept per directory, current included (multilog\'s n)' -r
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand collect" -l max-connections -d 'Senders served at once; more are refused and reported' -r
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand collect" -l max-line -d 'Longest line kept whole; a longer one is cut and goes on as a new line' -r
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand collect" -l log -d 'Where the collector\'s own messages go: stderr (default), stdout, syslog[/FACILITY] or a file; repeatable' -r
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand collect" -l no-stamp -d 'Do not put @TAI64N before each line (multilog\'s t, on by default)'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand collect" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand help; and not __fish_seen_subcommand_from migrate log collect help" -f -a "migrate" -d 'Print a Dante configuration rewritten as one ferrosocks runs'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand help; and not __fish_seen_subcommand_from migrate log collect help" -f -a "log" -d 'Read Dante and ferrosocks logs: traffic accounting, conversion, filtering'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand help; and not __fish_seen_subcommand_from migrate log collect help" -f -a "collect" -d 'Receive shipped log files and write one multilog directory per sender'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand help; and not __fish_seen_subcommand_from migrate log collect help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand help; and __fish_seen_subcommand_from log" -f -a "stats" -d 'Per-group traffic: sessions, blocked requests, bytes each way, durations'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand help; and __fish_seen_subcommand_from log" -f -a "convert" -d 'Rewrite text log lines as ferrosocks\' JSON lines (or CSV rows)'
complete -c ferrosocks -n "__fish_ferrosocks_using_subcommand help; and __fish_seen_subcommand_from log" -f -a "grep" -d 'Print the traffic records whose fields match, as they are in the input'
