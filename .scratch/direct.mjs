import sodium from 'libsodium-wrappers';
import { randomBytes } from 'node:crypto';
await sodium.ready;
const L = sodium.libsodium;
const key = randomBytes(32), lk = randomBytes(32), nonce = randomBytes(24), pt = randomBytes(1009), ad = Buffer.concat([randomBytes(11), Buffer.from('smsess:{' + 'a'.repeat(64) + '}')]);
const N = 50000;
function t(label, fn) { for (let i = 0; i < 2000; i++) fn(); const t0 = process.hrtime.bigint(); for (let i = 0; i < N; i++) fn(); console.log(label.padEnd(40), (Number(process.hrtime.bigint() - t0) / 1e3 / N).toFixed(2), 'us'); }
const cap = 64 * 1024;
const base = L._malloc(32 + 32 + 24 + 256 + cap + 16 + 64);
const kP = base, lkP = base + 32, nP = base + 64, adP = base + 88, mP = base + 344, cP = mP; // in-place? use separate
const outP = L._malloc(cap + 16);
L.HEAPU8.set(key, kP); L.HEAPU8.set(lk, lkP);
function seal(p, a, n) {
  const H = L.HEAPU8;
  H.set(n, nP); H.set(a, adP); H.set(p, mP);
  if (L._crypto_aead_xchacha20poly1305_ietf_encrypt(outP, 0, mP, p.length, 0, adP, a.length, 0, 0, nP, kP) !== 0) throw new Error('x');
  return Buffer.from(L.HEAPU8.subarray(outP, outP + p.length + 16));
}
const idb = Buffer.from('bench000000000000000000001');
function gh(id) { const H = L.HEAPU8; H.set(id, mP); L._crypto_generichash(outP, 32, mP, id.length, 0, lkP, 32); return Buffer.from(L.HEAPU8.subarray(outP, outP + 32)); }
const ref = Buffer.from(sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(pt, ad, null, nonce, key));
console.log('equal', ref.equals(seal(pt, ad, nonce)), Buffer.from(sodium.crypto_generichash(32, idb, lk)).equals(gh(idb)));
t('wrapper seal', () => sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(pt, ad, null, nonce, key));
t('direct seal', () => seal(pt, ad, nonce));
t('wrapper generichash', () => sodium.crypto_generichash(32, idb, lk));
t('direct generichash', () => gh(idb));
t('direct generichash + hex', () => gh(idb).toString('hex'));
t('Buffer.from(string)', () => Buffer.from('bench000000000000000000001', 'latin1'));
