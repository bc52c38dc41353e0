"use strict";
// Studbook's browser-side trust code: the reviewer's Ed25519 key (WebCrypto, non-extractable,
// kept in IndexedDB), DSSE signing of in-toto statements in the exact bytes the Python side
// signs (lineage.statements.canonical_json, lineage.dsse.pae), the key-possession proof of
// POST /v1/keys, and offline checks of log inclusion proofs (RFC 9162) and signed checkpoints
// (C2SP signed notes) against the log's verifier key. No server holds the private key.

const SB = (() => {
  const enc = new TextEncoder();
  const PAYLOAD_TYPE = "application/vnd.in-toto+json";
  const STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
  const POSSESSION_PAYLOAD_TYPE = "application/vnd.studbook.key-possession+json";
  const POSSESSION_TYPE = "https://studbook.dev/KeyPossession/v1";
  const PREDICATES = {
    flag: "https://studbook.dev/attestations/flag/v1",
    clearance: "https://studbook.dev/attestations/clearance/v1",
    acceptance: "https://studbook.dev/attestations/risk-acceptance/v1",
    "finding-confirmation": "https://studbook.dev/attestations/finding-confirmation/v1",
    "finding-dismissal": "https://studbook.dev/attestations/finding-dismissal/v1",
  };

  function b64(bytes) {
    let s = "";
    const u = new Uint8Array(bytes);
    for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode(...u.subarray(i, i + 0x8000));
    return btoa(s);
  }
  function unb64(text) {
    const s = atob(text);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  function hex(bytes) {
    return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
  }
  function concat(...parts) {
    const n = parts.reduce((a, p) => a + p.length, 0);
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  }
  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }
  function equal(a, b) {
    if (a.length !== b.length) return false;
    let d = 0;
    for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
    return d === 0;
  }

  // json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=...) in JavaScript.
  // Keys sort by code point as Python does; JSON.stringify escapes strings as Python does for
  // every character but non-ASCII ones, which `ascii` escapes as \uXXXX (Python's ensure_ascii).
  function pyJson(value, ascii) {
    if (value === null) return "null";
    if (Array.isArray(value)) return "[" + value.map((v) => pyJson(v, ascii)).join(",") + "]";
    switch (typeof value) {
      case "string": {
        const s = JSON.stringify(value);
        return ascii ? s.replace(/[\u007f-\uffff]/g, (c) => c.charCodeAt(0) > 0x7f
          ? "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0") : c) : s;
      }
      case "number":
        if (!Number.isInteger(value)) throw new Error("only integers are signed");
        return String(value);
      case "boolean": return value ? "true" : "false";
      case "object": {
        const keys = Object.keys(value).sort((a, b) => {
          const x = [...a].map((c) => c.codePointAt(0)), y = [...b].map((c) => c.codePointAt(0));
          for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
          return x.length - y.length;
        });
        return "{" + keys.map((k) => pyJson(k, ascii) + ":" + pyJson(value[k], ascii)).join(",") + "}";
      }
      default: throw new Error("cannot serialise " + typeof value);
    }
  }
  const canonicalJson = (obj) => enc.encode(pyJson(obj, false));
  const entryBytes = (envelope) => enc.encode(pyJson(envelope, true));

  function pae(payloadType, payload) {
    const t = enc.encode(payloadType);
    return concat(enc.encode(`DSSEv1 ${t.length} `), t, enc.encode(` ${payload.length} `), payload);
  }

  // ------------------------------------------------------------------ the reviewer's key
  const DB = "studbook-keys", STORE = "keys";
  function idb() {
    return new Promise((resolve, reject) => {
      const req = indexedDB.open(DB, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  async function idbDo(mode, fn) {
    const db = await idb();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = fn(tx.objectStore(STORE));
      tx.oncomplete = () => { db.close(); resolve(req.result); };
      tx.onerror = () => { db.close(); reject(tx.error); };
    });
  }
  const storedKey = (principal) => idbDo("readonly", (s) => s.get(principal));
  const storeKey = (principal, rec) => idbDo("readwrite", (s) => s.put(rec, principal));
  const forgetKey = (principal) => idbDo("readwrite", (s) => s.delete(principal));

  async function newKey() {
    // extractable=false: the private half can sign but never be read, not even by this page.
    const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
    const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
    return { privateKey: pair.privateKey, publicKey: pair.publicKey, publicB64: b64(raw),
      keyid: hex(await sha256(raw)), created: new Date().toISOString(), registered: false };
  }

  async function signEnvelope(key, payloadType, payload) {
    const sig = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key.privateKey, pae(payloadType, payload)));
    return { payload: b64(payload), payloadType, signatures: [{ keyid: key.keyid, sig: b64(sig) }] };
  }
  // POP.md: {"_type": KeyPossession/v1, "keyid": KEYID, "principal": NAME}, canonical JSON.
  const possessionProof = (key, principal) => signEnvelope(key, POSSESSION_PAYLOAD_TYPE,
    canonicalJson({ _type: POSSESSION_TYPE, keyid: key.keyid, principal }));

  function statement(kind, digest, label, predicate) {
    return { _type: STATEMENT_TYPE, subject: [{ name: label, digest: { sha256: digest } }],
      predicateType: PREDICATES[kind], predicate };
  }
  const signStatement = (key, st) => signEnvelope(key, PAYLOAD_TYPE, canonicalJson(st));

  // ------------------------------------------------------------------ the log, checked here
  async function nodeHash(l, r) { return sha256(concat(Uint8Array.of(1), l, r)); }

  // RFC 9162 2.1.3.2: recompute the root from the leaf and the audit path.
  async function rootFromInclusion(index, size, leaf, path) {
    if (!(index >= 0 && index < size)) throw new Error("index outside the tree");
    let fn = index, sn = size - 1, r = leaf;
    for (const p of path) {
      if (sn === 0) throw new Error("proof too long");
      if (fn % 2 === 1 || fn === sn) {
        r = await nodeHash(p, r);
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      } else {
        r = await nodeHash(r, p);
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    if (sn !== 0) throw new Error("proof too short");
    return r;
  }

  function parseNote(note) {
    const cut = note.indexOf("\n\n");
    if (cut < 0) throw new Error("checkpoint has no signature block");
    const body = note.slice(0, cut + 1);
    const lines = body.slice(0, -1).split("\n");
    if (lines.length < 3 || !/^(0|[1-9][0-9]*)$/.test(lines[1])) throw new Error("malformed checkpoint");
    const sigs = note.slice(cut + 2).split("\n").filter((l) => l).map((l) => {
      if (!l.startsWith("\u2014 ")) throw new Error("malformed signature line");
      const [name, sig] = l.slice(2).split(" ");
      return { name, raw: unb64(sig) };
    });
    return { body, origin: lines[0], size: Number(lines[1]), root: unb64(lines[2]), sigs };
  }

  // A vkey `<name>+<hex key id>+<base64(0x01 || key)>`, its id checked against its key.
  async function parseVkey(vkey) {
    // The name and the hex id hold no '+'; the base64 key may.
    const first = vkey.indexOf("+"), second = vkey.indexOf("+", first + 1);
    if (first < 1 || second < 0) throw new Error("malformed verifier key");
    const name = vkey.slice(0, first), idHex = vkey.slice(first + 1, second), keyB64 = vkey.slice(second + 1);
    const keyBytes = unb64(keyB64);
    if (keyBytes[0] !== 1 || keyBytes.length !== 33) throw new Error("not an Ed25519 verifier key");
    const pub = keyBytes.slice(1);
    const expectId = (await sha256(concat(enc.encode(name + "\n"), Uint8Array.of(1), pub))).slice(0, 4);
    if (hex(expectId) !== idHex) throw new Error("verifier key id does not match its key");
    return { name, pub, expectId };
  }

  // A C2SP signed note verified under the log's vkey.
  async function verifyCheckpoint(note, vkey) {
    const { name, pub, expectId } = await parseVkey(vkey);
    const cp = parseNote(note);
    const key = await crypto.subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
    const mine = cp.sigs.filter((s) => s.name === name && equal(s.raw.slice(0, 4), expectId));
    if (!mine.length) throw new Error("checkpoint not signed by the log's key");
    for (const s of mine) {
      const ok = await crypto.subtle.verify({ name: "Ed25519" }, key, s.raw.slice(4), enc.encode(cp.body));
      if (!ok) throw new Error("checkpoint signature does not verify");
    }
    return cp;
  }

  // The envelope as stored -> its log leaf -> the proof's root -> the signed checkpoint's root.
  async function verifyInclusion(envelope, proof, vkey) {
    const leaf = await sha256(concat(Uint8Array.of(0), entryBytes(envelope)));
    if (!equal(leaf, unb64(proof.leaf_hash))) throw new Error("the envelope is not the logged leaf");
    const root = await rootFromInclusion(proof.log_index, proof.tree_size, leaf, proof.hashes.map(unb64));
    const cp = await verifyCheckpoint(proof.checkpoint, vkey);
    if (cp.size !== proof.tree_size) throw new Error("checkpoint is for another tree size");
    if (!equal(root, cp.root)) throw new Error("inclusion proof does not reach the checkpoint's root");
    return { index: proof.log_index, size: cp.size, origin: cp.origin };
  }

  // A statement the registry signed with the log's own key (a finding from the weights): the
  // DSSE signature under the key in the log's vkey, and the payload's sha256, which decisions
  // name. Returns the statement.
  async function verifyLogSigned(envelope, vkey, payloadDigest) {
    const { pub } = await parseVkey(vkey);
    const keyid = hex(await sha256(pub));
    if (envelope.payloadType !== PAYLOAD_TYPE) throw new Error("not an in-toto envelope");
    const payload = unb64(envelope.payload);
    if (hex(await sha256(payload)) !== payloadDigest) throw new Error("the statement is not the one named");
    const key = await crypto.subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
    const mine = (envelope.signatures || []).filter((s) => s.keyid === keyid);
    if (!mine.length) throw new Error("not signed with the log's key");
    for (const s of mine) {
      const ok = await crypto.subtle.verify({ name: "Ed25519" }, key, unb64(s.sig), pae(envelope.payloadType, payload));
      if (!ok) throw new Error("the signature does not verify under the log's key");
    }
    return JSON.parse(new TextDecoder().decode(payload));
  }

  return { b64, unb64, hex, sha256, canonicalJson, entryBytes, pae, newKey, storedKey, storeKey,
    forgetKey, possessionProof, statement, signStatement, verifyInclusion, verifyCheckpoint,
    verifyLogSigned, rootFromInclusion, PREDICATES };
})();
window.SB = SB;
