#!/bin/sh
# Runs after the files are in place (deb: postinst configure [OLD-VERSION];
# rpm: %post 1 on install, 2 on upgrade). Creates the data directory, tells
# systemd about the unit and, on an upgrade, restarts a running server. A new
# install does not start the server: review /etc/licensor/licensor.env first.
set -e
case "$1" in
configure | 1 | 2) ;;
*) exit 0 ;; # deb: abort-upgrade, abort-remove, ...
esac

# The data directory (the SQLite database): licensor's own, 0750.
install -d -o licensor -g licensor -m 0750 /var/lib/licensor

upgrade=
if [ "$1" = 2 ] || { [ "$1" = configure ] && [ -n "${2:-}" ]; }; then
	upgrade=1
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	if [ -n "$upgrade" ]; then
		systemctl try-restart licensor.service >/dev/null 2>&1 || true
	fi
fi
if [ -z "$upgrade" ]; then
	cat <<'MSG'
licensor is installed but not started. Review /etc/licensor/licensor.env, then:
  systemctl enable --now licensor
  sudo -u licensor licensor keys create --db /var/lib/licensor/licensor.db --name bss --scope write
See /usr/share/doc/licensor/install.md.
MSG
fi
exit 0
