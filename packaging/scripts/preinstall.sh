#!/bin/sh
# Runs before the package's files are unpacked (deb: preinst install|upgrade;
# rpm: %pre 1|2). Creates the licensor system user and group, which own
# /var/lib/licensor and read /etc/licensor/licensor.env. Idempotent.
set -e
if ! getent group licensor >/dev/null 2>&1; then
	groupadd --system licensor
fi
if ! getent passwd licensor >/dev/null 2>&1; then
	useradd --system --gid licensor --home-dir /var/lib/licensor --no-create-home \
		--shell /usr/sbin/nologin --comment "licensor license management service" licensor
fi
exit 0
