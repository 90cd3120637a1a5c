// Mints the Node-signed fixtures in node-tokens.json with nothing but Node's `crypto`, the way
// the e2e suite signs tokens: HS256 (createHmac), ES256 (sign with dsaEncoding 'ieee-p1363') and
// EdDSA (Ed25519). Keys are freshly generated; re-running changes the fixture, which is fine.
// Usage: node edge/src/core/auth/testdata/node-tokens.mjs > edge/src/core/auth/testdata/node-tokens.json
import { createHmac, generateKeyPairSync, sign } from 'node:crypto';

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const claims = {
  iss: 'https://idp.example/', aud: 'edgebrain-api', sub: 'node-user',
  exp: 4102444800, // 2100-01-01: the Rust test pins its own clock
  scope: 'reports:read',
};
const input = (header) => `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;

const hsSecret = 'node-secret-0123456789abcdef0123456789';
const hsInput = input({ alg: 'HS256', typ: 'JWT', kid: 'node-hs' });
const hs256 = `${hsInput}.${createHmac('sha256', hsSecret).update(hsInput).digest('base64url')}`;

const es = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const esInput = input({ alg: 'ES256', typ: 'JWT', kid: 'node-es' });
const es256 = `${esInput}.${b64url(sign('sha256', Buffer.from(esInput), { key: es.privateKey, dsaEncoding: 'ieee-p1363' }))}`;

const ed = generateKeyPairSync('ed25519');
const edInput = input({ alg: 'EdDSA', typ: 'JWT', kid: 'node-ed' });
const eddsa = `${edInput}.${b64url(sign(null, Buffer.from(edInput), ed.privateKey))}`;

console.log(JSON.stringify({
  hs256_secret: hsSecret,
  jwks: { keys: [
    { ...es.publicKey.export({ format: 'jwk' }), kid: 'node-es', alg: 'ES256', use: 'sig' },
    { ...ed.publicKey.export({ format: 'jwk' }), kid: 'node-ed', alg: 'EdDSA', use: 'sig' },
  ] },
  tokens: { HS256: hs256, ES256: es256, EdDSA: eddsa },
}, null, 2));
