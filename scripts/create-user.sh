#!/bin/sh
# Create the system user the kvmstatd worker runs as (no home, no shell,
# no groups: it needs nothing but the fds the helper hands it).
set -eu
USER_NAME="${1:-kvmstatd}"
if ! getent passwd "$USER_NAME" >/dev/null; then
	useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
		--user-group "$USER_NAME"
	echo "create-user: created system user $USER_NAME"
fi
