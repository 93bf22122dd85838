#!/usr/bin/env bash
# Fails when gen/ is not exactly what scripts/generate.sh makes from proto/
# (stale, hand-edited, missing or extra files), and when proto/ fails buf lint
# or is not buf-formatted.
# Generates into a temporary directory and compares with diff -r: needs no git
# and touches nothing in the work tree.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

"$root/scripts/tools.sh"
buf="$(go env GOPATH)/bin/buf"
"$buf" lint
if ! "$buf" format --diff --exit-code; then
	echo "check-gen: proto/ is not buf-formatted; run: \$(go env GOPATH)/bin/buf format -w" >&2
	exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$root/scripts/generate.sh" "$tmp"

if [[ ! -d gen ]]; then
	echo "check-gen: gen/ is missing; run make generate and commit gen/" >&2
	exit 1
fi
if ! diff -r gen "$tmp/gen" >"$tmp/diff"; then
	echo "check-gen: gen/ differs from what proto/ generates; run make generate and commit gen/:" >&2
	head -n 100 "$tmp/diff" >&2
	exit 1
fi
echo "check-gen: gen/ is up to date"
