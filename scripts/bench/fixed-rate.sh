#!/bin/bash
# The p99 at a fixed inbound rate, from source: `isched serve` (src/main.ts, store target, retention
# compressed as the soak has it) on CPU 0, the soak's load generator (Ed25519-signed unique
# invitations, 16 keep-alive connections, latency counted from when each request fell due) on
# CPU 1; one line per 10 s window (p50, p99, max in ms) and the WAL file's largest size.
#
#   bash scripts/bench/fixed-rate.sh [SECONDS=60] [RATE=900]
#
# To compare two trees, run it in each, one after the other, on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
rate=${2:-900}
dir=$(mktemp -d /tmp/isched-fixed-rate-XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
bun=./node_modules/.bin/bun
"$bun" -e "
  const { generateDkimKey } = await import('./src/dkim/keygen.ts');
  const k = generateDkimKey('ed25519');
  await Bun.write('$dir/peer.key', k.privateKeyPem);
  await Bun.write('$dir/peer.pub', k.publicKeyPem);
"
port=$("$bun" -e "const { freePort } = await import('./test/support/ports.ts'); console.log(await freePort())")
ISCHED_BENCHMARK_RETENTION=bodies=1m,messages=2m,every=20s taskset -c 0 "$bun" src/main.ts serve \
  --domain org.test --listen "127.0.0.1:$port" --console 127.0.0.1:0 --data "$dir/data" \
  --deliver store --peer-key "peer.test:s1=$dir/peer.pub" > "$dir/serve.log" 2>&1 &
for _ in $(seq 50); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done
(while sleep 1; do stat -c %s "$dir/data/isched.db-wal" 2>/dev/null || true; done > "$dir/wal.txt") &
taskset -c 1 "$bun" scripts/bench/soak.ts --role load --port "$port" --key "$dir/peer.key" \
  --concurrency 16 --seconds "$seconds" --window 10 --prefix "fixed-$RANDOM" --rate "$rate" |
  "$bun" -e '
    for await (const line of console) {
      if (!line.trim().startsWith("{")) continue;
      const v = JSON.parse(line);
      if (v.kind === "window") console.log(`${v.endS} s: p50 ${v.p50.toFixed(2)} ms, p99 ${v.p99.toFixed(1)} ms, max ${v.max.toFixed(1)} ms, ${v.ok}/${v.sent} ok`);
    }'
echo "WAL file at most: $(sort -n "$dir/wal.txt" | tail -1) bytes"
