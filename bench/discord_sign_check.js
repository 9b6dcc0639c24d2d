#!/usr/bin/env node
// Cross-check of bench-discord-sign with another Ed25519 implementation
// (node:crypto, OpenSSL): verifies lines "<timestamp>\t<sig hex>\t<body>"
// with the peers' public key and checks that ids are distinct.
// usage: node bench/discord_sign_check.js PUBLIC_PEM FILE... [--max N]
//   PUBLIC_PEM: ../shared/peers/keys/public.pem (SPKI PEM)
//   --max N: check at most N lines per file (default: all)
// Prints "node check FILE: N lines ok, N distinct ids" or the first bad line;
// exit status 1 on any failure.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');

const args = process.argv.slice(2);
let max = Infinity;
const mi = args.indexOf('--max');
if (mi >= 0) { max = Number(args[mi + 1]); args.splice(mi, 2); }
if (args.length < 2) {
  console.error('usage: discord_sign_check.js PUBLIC_PEM FILE... [--max N]');
  process.exit(2);
}
const key = crypto.createPublicKey(fs.readFileSync(args[0]));
const ids = new Set();
let failed = false;
for (const file of args.slice(1)) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  let n = 0;
  for (const line of lines) {
    if (line === '' || n >= max) continue;
    n++;
    const [ts, sig, body] = line.split('\t');
    let why = null;
    let id;
    try {
      id = JSON.parse(body).id;
    } catch (e) {
      why = 'body is not JSON';
    }
    if (!why && ids.has(id)) why = `id ${id} seen before`;
    if (!why && !crypto.verify(null, Buffer.from(ts + body, 'utf8'), key, Buffer.from(sig, 'hex'))) {
      why = 'signature does not verify';
    }
    if (why) {
      console.error(`node check ${file}: line ${n}: ${why}`);
      failed = true;
      break;
    }
    ids.add(id);
  }
  if (!failed) console.log(`node check ${file}: ${n} lines ok, ${ids.size} distinct ids so far`);
  if (failed) break;
}
process.exit(failed ? 1 : 0);
