import sodium from 'libsodium-wrappers';
import { createCipheriv, randomBytes } from 'node:crypto';
await sodium.ready;
const key = randomBytes(32), lk = randomBytes(32), nonce = randomBytes(24), pt = randomBytes(1009), ad = Buffer.concat([randomBytes(11), Buffer.from('smsess:{' + 'a'.repeat(64) + '}')]);
const N = 50000;
function t(label, fn) { for (let i = 0; i < 2000; i++) fn(); const t0 = process.hrtime.bigint(); for (let i = 0; i < N; i++) fn(); console.log(label.padEnd(40), (Number(process.hrtime.bigint() - t0) / 1e3 / N).toFixed(2), 'us'); }
// HChaCha20 pure JS
const SIGMA = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);
function hchacha(k, n16, out) {
  let x0=SIGMA[0],x1=SIGMA[1],x2=SIGMA[2],x3=SIGMA[3];
  let x4=k.readUInt32LE(0),x5=k.readUInt32LE(4),x6=k.readUInt32LE(8),x7=k.readUInt32LE(12),x8=k.readUInt32LE(16),x9=k.readUInt32LE(20),x10=k.readUInt32LE(24),x11=k.readUInt32LE(28);
  let x12=n16.readUInt32LE(0),x13=n16.readUInt32LE(4),x14=n16.readUInt32LE(8),x15=n16.readUInt32LE(12);
  for (let i=0;i<20;i+=2){
    x0=x0+x4|0;x12^=x0;x12=x12<<16|x12>>>16;x8=x8+x12|0;x4^=x8;x4=x4<<12|x4>>>20;x0=x0+x4|0;x12^=x0;x12=x12<<8|x12>>>24;x8=x8+x12|0;x4^=x8;x4=x4<<7|x4>>>25;
    x1=x1+x5|0;x13^=x1;x13=x13<<16|x13>>>16;x9=x9+x13|0;x5^=x9;x5=x5<<12|x5>>>20;x1=x1+x5|0;x13^=x1;x13=x13<<8|x13>>>24;x9=x9+x13|0;x5^=x9;x5=x5<<7|x5>>>25;
    x2=x2+x6|0;x14^=x2;x14=x14<<16|x14>>>16;x10=x10+x14|0;x6^=x10;x6=x6<<12|x6>>>20;x2=x2+x6|0;x14^=x2;x14=x14<<8|x14>>>24;x10=x10+x14|0;x6^=x10;x6=x6<<7|x6>>>25;
    x3=x3+x7|0;x15^=x3;x15=x15<<16|x15>>>16;x11=x11+x15|0;x7^=x11;x7=x7<<12|x7>>>20;x3=x3+x7|0;x15^=x3;x15=x15<<8|x15>>>24;x11=x11+x15|0;x7^=x11;x7=x7<<7|x7>>>25;
    x0=x0+x5|0;x15^=x0;x15=x15<<16|x15>>>16;x10=x10+x15|0;x5^=x10;x5=x5<<12|x5>>>20;x0=x0+x5|0;x15^=x0;x15=x15<<8|x15>>>24;x10=x10+x15|0;x5^=x10;x5=x5<<7|x5>>>25;
    x1=x1+x6|0;x12^=x1;x12=x12<<16|x12>>>16;x11=x11+x12|0;x6^=x11;x6=x6<<12|x6>>>20;x1=x1+x6|0;x12^=x1;x12=x12<<8|x12>>>24;x11=x11+x12|0;x6^=x11;x6=x6<<7|x6>>>25;
    x2=x2+x7|0;x13^=x2;x13=x13<<16|x13>>>16;x8=x8+x13|0;x7^=x8;x7=x7<<12|x7>>>20;x2=x2+x7|0;x13^=x2;x13=x13<<8|x13>>>24;x8=x8+x13|0;x7^=x8;x7=x7<<7|x7>>>25;
    x3=x3+x4|0;x14^=x3;x14=x14<<16|x14>>>16;x9=x9+x14|0;x4^=x9;x4=x4<<12|x4>>>20;x3=x3+x4|0;x14^=x3;x14=x14<<8|x14>>>24;x9=x9+x14|0;x4^=x9;x4=x4<<7|x4>>>25;
  }
  out.writeUInt32LE(x0>>>0,0);out.writeUInt32LE(x1>>>0,4);out.writeUInt32LE(x2>>>0,8);out.writeUInt32LE(x3>>>0,12);out.writeUInt32LE(x12>>>0,16);out.writeUInt32LE(x13>>>0,20);out.writeUInt32LE(x14>>>0,24);out.writeUInt32LE(x15>>>0,28);
  return out;
}
const sub = Buffer.alloc(32), n12 = Buffer.alloc(12);
function nativeSeal() {
  hchacha(key, nonce.subarray(0, 16), sub);
  nonce.copy(n12, 4, 16, 24);
  const c = createCipheriv('chacha20-poly1305', sub, n12, { authTagLength: 16 });
  c.setAAD(ad, { plaintextLength: pt.length });
  const ct = c.update(pt); c.final();
  return Buffer.concat([ct, c.getAuthTag()]);
}
// check equality
const ref = Buffer.from(sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(pt, ad, null, nonce, key));
console.log('equal', ref.equals(nativeSeal()));
t('libsodium xchacha seal', () => sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(pt, ad, null, nonce, key));
t('native chacha + JS hchacha', nativeSeal);
t('JS hchacha only', () => hchacha(key, nonce.subarray(0, 16), sub));
t('createCipheriv only', () => createCipheriv('chacha20-poly1305', sub, n12, { authTagLength: 16 }));
t('libsodium generichash hex', () => sodium.crypto_generichash(32, Buffer.from('bench000000000000000000001'), lk, 'hex'));
t('libsodium generichash bytes', () => sodium.crypto_generichash(32, Buffer.from('bench000000000000000000001'), lk));
t('libsodium xchacha open', () => sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, ref, ad, nonce, key));
