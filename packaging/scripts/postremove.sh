#!/bin/sh
# Runs after the files are removed (deb: postrm remove|purge|upgrade|...;
# rpm: %postun 0 on erase, 1 on upgrade). A removal keeps the data in
# /var/lib/licensor and the configuration in /etc/licensor; only a deb purge
# (apt purge licensor, dpkg --purge licensor) deletes them. The licensor user
# stays, as Debian's policy asks, in case files it owns remain elsewhere.
set -e
case "$1" in
purge)
	rm -rf /var/lib/licensor
	rm -rf /etc/licensor
	;;
esac
case "$1" in
remove | purge | 0)
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
