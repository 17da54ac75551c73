// One browser participant: joins the rounds of the coordinator named in ?coordinator=, and
// reports every model it submits (round seed and weights) to the page's server, which checks
// the coordinator's global models against them.
import { initialize, Participant } from './pkg/xaynet.js';

const status = (text) => {
  document.getElementById('status').textContent = text;
  fetch('log', { method: 'POST', body: text }).catch(() => {});
};
const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

try {
  const coordinator = new URLSearchParams(location.search).get('coordinator');
  await initialize();
  const p = new Participant(coordinator, { pollIntervalMs: 50, maxMessageSize: 1000 });
  status(`participant ${hex(p.publicKey()).slice(0, 8)} running against ${coordinator}`);
  await p.run({
    loadModel: async (pp) => {
      const len = pp.modelLength();
      const weights = Float32Array.from({ length: len }, (_, j) => ((j * 3) % 50) / 100 - 0.2);
      await fetch('submitted', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ seed: hex(pp.roundSeed()), weights: Array.from(weights) }),
      });
      return { weights };
    },
    onNotice: (n) => status(JSON.stringify(n)),
  });
} catch (e) {
  status(`error: ${e}`);
}
