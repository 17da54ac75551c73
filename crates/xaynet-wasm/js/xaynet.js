// The Xaynet participant for web pages and Node.js (>= 20): I/O with fetch and timers around
// the Rust state machine compiled to WebAssembly (xaynet_wasm.js, made by wasm-bindgen). No
// protocol logic lives here: Rust decides what to request, builds every message and decodes
// every answer.

import init, { WasmParticipant, global_model_f32 } from './xaynet_wasm.js';

/** Loads the WebAssembly module. In a page call `initialize()`; in Node pass the bytes of
 * `xaynet_wasm_bg.wasm`. */
export async function initialize(wasm) {
  await init(wasm === undefined ? undefined : { module_or_path: wasm });
}

const sleep = (ms, signal) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
});

export class Participant {
  /** A participant for the coordinator at `url`, with a fresh key or restored from `state`
   * (bytes from `save()`). */
  constructor(url, { scalar = 1.0, maxMessageSize = 65536, pollIntervalMs = 1000, state } = {}) {
    this.url = url.replace(/\/+$/, '');
    this.inner = state
      ? WasmParticipant.restore(state)
      : new WasmParticipant(scalar, maxMessageSize, pollIntervalMs);
    this.origin = performance.now();
  }

  now() { return performance.now() - this.origin; }

  /** Performs one action. `loadModel(participant)` returns `{weights: Float32Array, scalar?}`
   * or null (not ready); `onNotice(notice)` hears about new rounds, tasks, sent messages… */
  async step({ loadModel, onNotice, signal } = {}) {
    const action = JSON.parse(this.inner.poll(this.now()));
    switch (action.kind) {
      case 'wait':
        await sleep(Math.max(0, action.until - this.now()), signal);
        break;
      case 'get':
        try {
          const r = await fetch(`${this.url}/${action.path}`, { signal });
          const body = new Uint8Array(await r.arrayBuffer());
          this.inner.handle_response(action.what, r.status, body, this.now());
        } catch (e) {
          this.inner.handle_error(action.what, String(e), this.now());
        }
        break;
      case 'model': {
        const m = loadModel ? await loadModel(this) : null;
        this.inner.handle_model(m ? m.weights : undefined, m ? m.scalar : undefined, this.now());
        break;
      }
      case 'send': {
        const body = this.inner.take_body();
        try {
          const r = await fetch(`${this.url}/${action.path}`, {
            method: 'POST', body, signal,
            headers: { 'content-type': 'application/octet-stream' },
          });
          await r.arrayBuffer();
          this.inner.handle_response('message', r.status, new Uint8Array(0), this.now());
        } catch (e) {
          this.inner.handle_error('message', String(e), this.now());
        }
        break;
      }
      default:
        throw new Error(`unknown action ${action.kind}`);
    }
    for (let n = this.inner.next_notice(); n !== undefined; n = this.inner.next_notice()) {
      onNotice?.(JSON.parse(n));
    }
  }

  /** Runs until `signal` aborts. */
  async run(options = {}) {
    while (!options.signal?.aborted) await this.step(options);
  }

  /** The latest global model (Float32Array), or null before the first one. */
  async globalModel() {
    const r = await fetch(`${this.url}/model`);
    if (r.status === 204) return null;
    if (!r.ok) throw new Error(`GET /model: HTTP ${r.status}`);
    return global_model_f32(new Uint8Array(await r.arrayBuffer()));
  }

  /** The whole state (contains the secret key). */
  save() { return this.inner.save(); }
  publicKey() { return this.inner.public_key(); }
  roundSeed() { return this.inner.round_seed(); }
  modelLength() { return this.inner.model_length(); }
  task() { return this.inner.task(); }
}
