#!/bin/sh
# Test plugin for the header injection test: its output starts with CR LF
# and a would-be header line. Exits CRITICAL.
printf 'DOWN\r\nBcc: victim@example.org\r\nSubject: injected\n'
exit 2
