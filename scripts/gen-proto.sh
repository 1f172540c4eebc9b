#!/usr/bin/env bash
# Regenerates src/gen/ from proto/. Needs protoc (Debian: protobuf-compiler); the output is committed,
# so building and testing never need protoc.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf src/gen
mkdir -p src/gen
protoc \
  --plugin=protoc-gen-ts_proto=node_modules/.bin/protoc-gen-ts_proto \
  --ts_proto_out=src/gen \
  --ts_proto_opt=forceLong=bigint,outputServices=grpc-js,esModuleInterop=true,importSuffix=.js,env=node,oneof=unions-value,useOptionals=none,outputJsonMethods=true,outputPartialMethods=true,exportCommonSymbols=false \
  -I proto \
  $(find proto -name '*.proto' | sort)
echo "generated: $(find src/gen -name '*.ts' | wc -l) files"
