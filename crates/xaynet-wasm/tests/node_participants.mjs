// N browser-style participants (the wasm build and js/xaynet.js) in Node.js against a live
// coordinator. Usage: node node_participants.mjs COORDINATOR_URL PKG_DIR N
// Every global model must be the plain average of the models submitted in an earlier round.
import { readFile } from 'node:fs/promises';
import path from 'node:path';

const [url, pkg, n] = process.argv.slice(2);
const { initialize, Participant } = await import(path.resolve(pkg, 'xaynet.js'));
await initialize(await readFile(path.resolve(pkg, 'xaynet_wasm_bg.wasm')));

const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const delta = (i, len) => Float32Array.from({ length: len }, (_, j) => ((j * 7 + i * 13) % 100) / 200 - 0.25);
const submitted = new Map();
const controller = new AbortController();
const fail = (message) => { console.error(`FAILED: ${message}`); process.exit(1); };
setTimeout(() => fail('no two global models within 90 s'), 90_000).unref();

const participants = Array.from({ length: Number(n) }, () =>
  new Participant(url, { pollIntervalMs: 50, maxMessageSize: 1000 }));
const runs = participants.map((p, i) => p.run({
  signal: controller.signal,
  loadModel: (pp) => {
    const w = delta(i, pp.modelLength());
    const seed = hex(pp.roundSeed());
    if (!submitted.has(seed)) submitted.set(seed, new Map());
    submitted.get(seed).set(i, w);
    return { weights: w };
  },
  onNotice: (notice) => { if (notice.kind === 'abandoned') fail(`abandoned: ${notice.reason}`); },
}));

// Save and restore one participant: same identity.
const restored = new Participant(url, { state: participants[0].save() });
if (hex(restored.publicKey()) !== hex(participants[0].publicKey())) fail('restore changed the key');

let verified = 0;
let last = null;
while (verified < 2) {
  await new Promise((r) => setTimeout(r, 200));
  const g = await participants[0].globalModel();
  if (g === null || (last !== null && hex(new Uint8Array(g.buffer)) === last)) continue;
  last = hex(new Uint8Array(g.buffer));
  // (Any round: participant 0 may not have noticed yet that the round just ended.)
  const matches = [...submitted].some(([, models]) => {
    if (models.size === 0) return false;
    return g.every((v, j) => {
      let sum = 0;
      for (const m of models.values()) sum += m[j];
      return Math.abs(v - sum / models.size) <= 1e-6;
    });
  });
  if (!matches) fail('a global model that is not the average of a round');
  verified += 1;
  console.log(`global model ${verified} verified (${g.length} weights)`);
}
controller.abort();
await Promise.all(runs);
console.log('ok');
