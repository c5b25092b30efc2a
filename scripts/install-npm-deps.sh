#!/bin/sh
# Install the npm packages monitoring/'s checks need (@grafana/schema and
# typescript, to type-check the generated dashboards) exactly as
# monitoring/package-lock.json pins them. Quiet and quick when they are
# already there; the registry is npm's configured one.
set -eu
dir="$(cd "$(dirname "$0")/../monitoring" && pwd)"
stamp="$dir/node_modules/.package-lock.json"
if [ -f "$stamp" ] && [ "$stamp" -nt "$dir/package-lock.json" ] && \
   [ -x "$dir/node_modules/.bin/tsc" ]; then
	exit 0
fi
echo "install-npm-deps: npm ci in monitoring/"
cd "$dir"
npm ci --no-audit --no-fund --loglevel=error
