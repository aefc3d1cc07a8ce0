#!/bin/sh
# Runs before the files are removed (deb: prerm remove|upgrade NEW-VERSION|...;
# rpm: %preun 0 on erase, 1 on upgrade). On removal, stops and disables the
# unit; an upgrade leaves it running (postinstall restarts it).
set -e
case "$1" in
remove | 0) ;;
*) exit 0 ;;
esac
if [ -d /run/systemd/system ]; then
	systemctl stop licensor.service >/dev/null 2>&1 || true
fi
if command -v systemctl >/dev/null 2>&1; then
	systemctl --no-reload disable licensor.service >/dev/null 2>&1 || true
fi
exit 0
