#!/usr/bin/env bash
# Installs the pinned code generation tools into $(go env GOPATH)/bin.
# A tool already there at the pinned version (as `go version -m` reports the
# package and module version it was built from) is left alone, so a re-run
# takes about a second. Needs the Go module proxy for anything missing; buf
# takes a few minutes to build the first time.
set -euo pipefail

bin="$(go env GOPATH)/bin"

# package@version, one per tool.
tools=(
	github.com/bufbuild/buf/cmd/buf@v1.75.0
	google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
	github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@v2.33.0
	github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@v2.33.0
)

# built prints "PACKAGE@VERSION" of the Go binary $1, or nothing.
built() {
	go version -m "$1" 2>/dev/null | awk '$1 == "path" { p = $2 } $1 == "mod" { v = $3 } END { if (p != "" && v != "") print p "@" v }'
}

for tool in "${tools[@]}"; do
	pkg="${tool%@*}"
	name="${pkg##*/}"
	if [[ "$(built "$bin/$name")" == "$tool" ]]; then
		continue
	fi
	echo "tools.sh: installing $tool" >&2
	GOBIN="$bin" GOFLAGS="${GOFLAGS:-} -mod=mod" go install "$tool"
	if [[ "$(built "$bin/$name")" != "$tool" ]]; then
		echo "tools.sh: $bin/$name is not $tool after go install" >&2
		exit 1
	fi
done
