#!/usr/bin/env node
// Fedify-based ActivityPub loopback test peer for fedserver's test suite.
//
//   node tests/peer/peer.mjs --port 0
//
// Prints exactly one line, `READY http://127.0.0.1:<port>`, on stdout once it
// is listening; every log line goes to stderr.  Exits when stdin reaches EOF
// (so a dead test runner never leaves it behind), on SIGTERM and on SIGINT.
// See README.md in this directory for the control API.

import http from "node:http";
import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID, webcrypto } from "node:crypto";
import { parseArgs } from "node:util";
import { Temporal } from "@js-temporal/polyfill";
import { configure, getTextFormatter, getLogger } from "@logtape/logtape";
import {
  createFederation,
  generateCryptoKeyPair,
  MemoryKvStore,
  signRequest,
  verifyRequestDetailed,
} from "@fedify/fedify";
import {
  Accept,
  Activity,
  Announce,
  Block,
  Create,
  Delete,
  Endpoints,
  Follow,
  isActor,
  Like,
  Mention,
  Note,
  Person,
  PUBLIC_COLLECTION,
  Reject,
  Tombstone,
  Undo,
  Update,
} from "@fedify/vocab";

const FEDIFY_VERSION = "2.3.6";
const PUBLIC = PUBLIC_COLLECTION.href;
const AS_CONTEXT = "https://www.w3.org/ns/activitystreams";

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

const USAGE = `usage: node peer.mjs [--port PORT] [--host HOST] [--log-level LEVEL]
                     [--first-knock rfc9421|draft-cavage-http-signatures-12]
                     [--no-stdin-watch]

  --port          TCP port, 0 (default) picks a free one
  --host          address to bind, default 127.0.0.1 (ids use this host)
  --log-level     LogTape level for Fedify logs on stderr
                  (trace|debug|info|warning|error|fatal), default warning
  --first-knock   HTTP signature spec Fedify tries first with an unknown
                  server, default rfc9421 (Fedify's default); it falls back
                  to the other one on 400/401/5xx ("double knocking")
  --no-stdin-watch  do not exit when stdin closes (manual runs with </dev/null)
`;

let args;
try {
  args = parseArgs({
    options: {
      port: { type: "string", default: "0" },
      host: { type: "string", default: "127.0.0.1" },
      "log-level": { type: "string", default: process.env.PEER_LOG_LEVEL ?? "warning" },
      "first-knock": { type: "string", default: "rfc9421" },
      "no-stdin-watch": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  }).values;
} catch (e) {
  process.stderr.write(`${e.message}\n${USAGE}`);
  process.exit(2);
}
if (args.help) {
  process.stderr.write(USAGE);
  process.exit(0);
}
const port = Number.parseInt(args.port, 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`invalid --port ${args.port}\n${USAGE}`);
  process.exit(2);
}
const LEVELS = ["trace", "debug", "info", "warning", "error", "fatal"];
if (!LEVELS.includes(args["log-level"])) {
  process.stderr.write(`invalid --log-level ${args["log-level"]}\n${USAGE}`);
  process.exit(2);
}
const KNOCKS = ["rfc9421", "draft-cavage-http-signatures-12"];
if (!KNOCKS.includes(args["first-knock"])) {
  process.stderr.write(`invalid --first-knock ${args["first-knock"]}\n${USAGE}`);
  process.exit(2);
}

// ---------------------------------------------------------------------------
// Logging: everything to stderr, stdout is reserved for the READY line.
// ---------------------------------------------------------------------------

const textFormatter = getTextFormatter({ timestamp: "time" });
await configure({
  contextLocalStorage: new AsyncLocalStorage(),
  sinks: { stderr: (record) => process.stderr.write(textFormatter(record)) },
  loggers: [
    { category: ["fedify"], lowestLevel: args["log-level"], sinks: ["stderr"] },
    { category: ["peer"], lowestLevel: args["log-level"], sinks: ["stderr"] },
    { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
  ],
});
const log = getLogger(["peer"]);

// ---------------------------------------------------------------------------
// Lifecycle: exit on stdin EOF, SIGTERM, SIGINT.
// ---------------------------------------------------------------------------

let server = null;
let shuttingDown = false;
function shutdown(why, code = 0) {
  if (shuttingDown) return;
  shuttingDown = true;
  log.info("shutting down: {why}", { why });
  try {
    server?.close();
    server?.closeAllConnections?.();
  } catch { /* ignore */ }
  // Do not wait for in-flight deliveries; a test peer must die promptly.
  setImmediate(() => process.exit(code));
}
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
process.on("SIGHUP", () => shutdown("SIGHUP"));
if (!args["no-stdin-watch"]) {
  process.stdin.on("end", () => shutdown("stdin closed"));
  process.stdin.on("close", () => shutdown("stdin closed"));
  process.stdin.on("error", () => shutdown("stdin error"));
  process.stdin.on("data", () => { /* discard */ });
  process.stdin.resume();
}
// stdout going away (parent died) must not crash with EPIPE noise.
process.stdout.on("error", () => shutdown("stdout error"));

// ---------------------------------------------------------------------------
// Listen first (port 0 => learn the real port), then build the federation
// with that origin.
// ---------------------------------------------------------------------------

let federation = null; // set below, before READY
server = http.createServer((req, res) => {
  handleNodeRequest(req, res).catch((e) => {
    log.error("unhandled error: {error}", { error: e });
    if (!res.headersSent) {
      res.writeHead(500, { "content-type": "application/json" });
    }
    res.end(JSON.stringify({ error: String(e?.message ?? e) }));
  });
});
server.keepAliveTimeout = 1000;
await new Promise((resolve, reject) => {
  server.once("error", reject);
  server.listen(port, args.host, resolve);
});
const boundPort = server.address().port;
const hostForUrl = args.host.includes(":") ? `[${args.host}]` : args.host;
const ORIGIN = `http://${hostForUrl}:${boundPort}`;

const USER_AGENT = { software: `fedserver-test-peer/${FEDIFY_VERSION}`, url: ORIGIN };
federation = createFederation({
  kv: new MemoryKvStore(),
  origin: ORIGIN,
  // Loopback/private addresses are refused by Fedify's document loader
  // (SSRF guard) unless this is set.  Tests only!
  allowPrivateAddress: true,
  firstKnock: args["first-knock"],
  userAgent: USER_AGENT,
});

// ---------------------------------------------------------------------------
// In-memory state
// ---------------------------------------------------------------------------

/**
 * @typedef {{id: string, inbox: string, sharedInbox: string|null}} StoredRecipient
 */

/** name -> actor state */
const actors = new Map();
/** every POST that reached an inbox, in arrival order */
const inboxLog = [];
/** every activity this peer tried to send */
const sentLog = [];
let seq = 0;
const waiters = new Set();

function changed() {
  for (const w of [...waiters]) w();
}

/** Resolve with fn()'s first truthy result, or null after timeoutMs. */
function waitFor(fn, timeoutMs) {
  const first = fn();
  if (first || timeoutMs <= 0) return Promise.resolve(first || null);
  return new Promise((resolve) => {
    const check = () => {
      const r = fn();
      if (r) {
        cleanup();
        resolve(r);
      }
    };
    const timer = setTimeout(() => {
      cleanup();
      resolve(fn() || null);
    }, timeoutMs);
    function cleanup() {
      clearTimeout(timer);
      waiters.delete(check);
    }
    waiters.add(check);
  });
}

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function storedRecipient(actor) {
  if (actor?.id == null || actor.inboxId == null) {
    throw new HttpError(502, `actor ${actor?.id?.href ?? "?"} has no inbox`);
  }
  return {
    id: actor.id.href,
    inbox: actor.inboxId.href,
    sharedInbox: actor.endpoints?.sharedInbox?.href ?? null,
  };
}

function toRecipient(s) {
  return {
    id: new URL(s.id),
    inboxId: new URL(s.inbox),
    endpoints: s.sharedInbox ? { sharedInbox: new URL(s.sharedInbox) } : null,
  };
}

function getActorState(name) {
  if (typeof name !== "string" || name === "") {
    throw new HttpError(400, "missing \"actor\"");
  }
  const a = actors.get(name);
  if (a == null) throw new HttpError(404, `no such local actor: ${name}`);
  return a;
}

function actorUri(name) {
  return new URL(`/users/${encodeURIComponent(name)}`, ORIGIN);
}

function newActivityId(a, kind) {
  return new URL(`${actorUri(a.name).href}#${kind}/${randomUUID()}`);
}

function ctxFor(data = { rec: null }) {
  return federation.createContext(new URL(ORIGIN), data);
}

function typeOf(json) {
  const t = Array.isArray(json?.type) ? json.type[0] : json?.type;
  return typeof t === "string" ? t.replace(/^as:/, "") : null;
}

/** Every type of a JSON object, without the `as:` / AS namespace prefix. */
function typesOf(json) {
  const list = Array.isArray(json?.type) ? json.type : [json?.type];
  return list
    .filter((t) => typeof t === "string")
    .map((t) => t.replace(/^as:/, "").replace(/^https:\/\/www\.w3\.org\/ns\/activitystreams#/, ""));
}

function idOf(v) {
  if (v == null) return null;
  if (typeof v === "string") return v;
  if (typeof v === "object" && typeof v.id === "string") return v.id;
  return null;
}

function requireUrl(value, field) {
  if (typeof value !== "string" || value === "") {
    throw new HttpError(400, `missing "${field}"`);
  }
  let u;
  try {
    u = new URL(value);
  } catch {
    throw new HttpError(400, `"${field}" must be an absolute URL, got ${JSON.stringify(value)}`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new HttpError(
      400,
      `"${field}" must be an http(s) URL (acct: handles are not supported: Fedify's WebFinger lookup always uses https)`,
    );
  }
  return u;
}

function note(ctxData, text) {
  const rec = ctxData?.rec;
  if (rec) rec.effects.push(text);
  log.debug("{text}", { text });
}

// ---------------------------------------------------------------------------
// Actors, keys, collections, objects
// ---------------------------------------------------------------------------

/**
 * RSA key for HTTP signatures.  Fedify's generateCryptoKeyPair() makes
 * 4096-bit keys (~2 s each); 2048 bits is what Mastodon uses and is fast.
 */
async function generateRsaKeyPair() {
  return await webcrypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  );
}

async function buildPerson(ctx, a) {
  const keys = await ctx.getActorKeyPairs(a.name);
  const values = {
    id: ctx.getActorUri(a.name),
    preferredUsername: a.name,
    name: a.displayName,
    url: ctx.getActorUri(a.name),
    published: a.published,
    manuallyApprovesFollowers: a.locked,
    discoverable: true,
    indexable: true,
    inbox: ctx.getInboxUri(a.name),
    outbox: ctx.getOutboxUri(a.name),
    followers: ctx.getFollowersUri(a.name),
    following: ctx.getFollowingUri(a.name),
    endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
    // First key (RSA) for HTTP signatures; all keys as Multikeys
    // (the Ed25519 one is used for FEP-8b32 Object Integrity Proofs).
    publicKey: keys[0].cryptographicKey,
    assertionMethods: keys.map((k) => k.multikey),
  };
  if (a.summary != null) values.summary = a.summary;
  if (a.updated != null) values.updated = a.updated;
  return new Person(values);
}

federation
  .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
    const a = actors.get(identifier);
    if (a == null) return null;
    return await buildPerson(ctx, a);
  })
  .mapHandle((_ctx, username) => (actors.has(username) ? username : null))
  .setKeyPairsDispatcher((_ctx, identifier) => actors.get(identifier)?.keyPairs ?? []);

federation
  .setFollowersDispatcher("/users/{identifier}/followers", (_ctx, identifier) => {
    const a = actors.get(identifier);
    if (a == null) return null;
    // Items are Recipients so that sendActivity(..., "followers") works too.
    return { items: [...a.followers.values()].map(toRecipient) };
  })
  .setCounter((_ctx, identifier) => actors.get(identifier)?.followers.size ?? null);

federation
  .setFollowingDispatcher("/users/{identifier}/following", (_ctx, identifier) => {
    const a = actors.get(identifier);
    if (a == null) return null;
    const items = [...a.following.values()]
      .filter((f) => f.state === "accepted")
      .map((f) => new URL(f.id));
    return { items };
  })
  .setCounter((_ctx, identifier) => {
    const a = actors.get(identifier);
    if (a == null) return null;
    return [...a.following.values()].filter((f) => f.state === "accepted").length;
  });

federation
  .setOutboxDispatcher("/users/{identifier}/outbox", (ctx, identifier) => {
    const a = actors.get(identifier);
    if (a == null) return null;
    const items = [...a.notes.values()]
      .filter((n) => !n.deleted && n.visibility === "public")
      .reverse()
      .map((n) => buildCreate(ctx, a, n));
    return { items };
  })
  .setCounter((_ctx, identifier) => {
    const a = actors.get(identifier);
    if (a == null) return null;
    return [...a.notes.values()].filter((n) => !n.deleted && n.visibility === "public").length;
  });

function buildNote(ctx, a, n) {
  const values = {
    id: new URL(n.id),
    attribution: ctx.getActorUri(a.name),
    content: n.content,
    published: n.published,
    url: new URL(n.id),
    tos: n.to.map((u) => new URL(u)),
    ccs: n.cc.map((u) => new URL(u)),
    tags: n.mentions.map((m) => new Mention({ href: new URL(m.href), name: m.name })),
  };
  if (n.inReplyTo) values.replyTarget = new URL(n.inReplyTo);
  if (n.summary != null) values.summary = n.summary;
  if (n.sensitive) values.sensitive = true;
  return new Note(values);
}

function buildCreate(ctx, a, n) {
  return new Create({
    id: new URL(`${n.id}#create`),
    actor: ctx.getActorUri(a.name),
    object: buildNote(ctx, a, n),
    published: n.published,
    tos: n.to.map((u) => new URL(u)),
    ccs: n.cc.map((u) => new URL(u)),
  });
}

federation.setObjectDispatcher(
  Note,
  "/users/{identifier}/notes/{id}",
  (ctx, values) => {
    const a = actors.get(values.identifier);
    const n = a?.notes.get(values.id);
    if (a == null || n == null || n.deleted) return null;
    return buildNote(ctx, a, n);
  },
);

// ---------------------------------------------------------------------------
// Sending (no queue: delivery happens inside sendActivity, errors propagate)
// ---------------------------------------------------------------------------

async function send(ctx, a, recipients, activity, options = {}) {
  const list = Array.isArray(recipients) ? recipients : [recipients];
  const entry = {
    seq: ++seq,
    at: new Date().toISOString(),
    actor: a.name,
    type: activity.constructor.name,
    id: activity.id?.href ?? null,
    recipients: list.map((r) => r.id?.href ?? null),
    ok: null,
    error: null,
  };
  sentLog.push(entry);
  if (list.length === 0) {
    entry.ok = true;
    changed();
    return entry;
  }
  try {
    await ctx.sendActivity({ identifier: a.name }, list, activity, {
      preferSharedInbox: !!options.preferSharedInbox,
    });
    entry.ok = true;
  } catch (e) {
    entry.ok = false;
    entry.error = String(e?.message ?? e);
    log.error("delivery of {id} failed: {error}", { id: entry.id, error: entry.error });
    changed();
    throw new HttpError(502, `delivery failed: ${entry.error}`);
  }
  changed();
  return entry;
}

// ---------------------------------------------------------------------------
// Raw sending: an arbitrary JSON activity, signed but not re-serialised.
// ---------------------------------------------------------------------------

const RAW_BODY_CAP = 2000;
const RAW_TIMEOUT_MS = 30000;
// The same shape as Fedify's own User-Agent (getUserAgent in
// @fedify/vocab-runtime, which is not a direct dependency).
const RAW_USER_AGENT = `${USER_AGENT.software} (Fedify/${FEDIFY_VERSION}; Node.js/${process.versions.node}; +${USER_AGENT.url})`;

/** `Offer` -> `offers`, for fragment ids like the peer's other activity ids. */
function rawIdKind(type) {
  const t = (type ?? "").toLowerCase().replace(/[^a-z0-9]+/g, "");
  return t === "" ? "activities" : `${t}s`;
}

/**
 * The activity exactly as the caller gave it, plus `@context`, `id` and
 * `actor` when they are missing (or null).  Key order: @context, id, the
 * caller's keys, actor.
 */
function completeRawActivity(a, given) {
  const activity = { "@context": given["@context"] ?? AS_CONTEXT };
  if (given.id == null) activity.id = newActivityId(a, rawIdKind(typeOf(given))).href;
  for (const [k, v] of Object.entries(given)) {
    if (k === "@context" || ((k === "id" || k === "actor") && v == null)) continue;
    activity[k] = v;
  }
  if (given.actor == null) activity.actor = actorUri(a.name).href;
  return activity;
}

/**
 * POST `given` to `inbox`, signed with the actor's RSA key by Fedify's
 * signRequest().  No Fedify vocabulary round trip: the body is
 * JSON.stringify of the completed activity, so unknown types and fields
 * survive.  A non-2xx answer is returned as data, not thrown.
 */
async function sendRaw(a, inbox, given, spec) {
  const activity = completeRawActivity(a, given);
  const body = JSON.stringify(activity);
  const entry = {
    seq: ++seq,
    at: new Date().toISOString(),
    actor: a.name,
    type: typeOf(activity),
    id: typeof activity.id === "string" ? activity.id : null,
    recipients: [inbox.href],
    ok: null,
    error: null,
    raw: true,
    inbox: inbox.href,
    spec,
    status: null,
  };
  sentLog.push(entry);
  const fail = (message) => {
    entry.ok = false;
    entry.error = message;
    log.error("raw delivery of {id} failed: {error}", { id: entry.id, error: message });
    changed();
    return new HttpError(502, message);
  };
  let response;
  try {
    const ctx = ctxFor();
    const keys = await ctx.getActorKeyPairs(a.name);
    const rsa = keys.find((k) => k.privateKey.algorithm.name === "RSASSA-PKCS1-v1_5");
    if (rsa == null) throw new Error(`${a.name} has no RSA key`);
    const request = new Request(inbox, {
      method: "POST",
      headers: {
        "Content-Type": "application/activity+json",
        "Accept": "application/activity+json, application/ld+json",
        "User-Agent": RAW_USER_AGENT,
      },
      body,
    });
    // draft-cavage: adds Host, Date, Digest (SHA-256) and Signature
    // (covering every header); rfc9421: adds Host, Date, Content-Digest,
    // Signature-Input and Signature.
    const signed = await signRequest(request, rsa.privateKey, rsa.keyId, { spec });
    // No redirect following: a redirected POST would carry a signature for
    // the wrong URL; the 3xx is returned as data instead.
    response = await fetch(signed, { redirect: "manual", signal: AbortSignal.timeout(RAW_TIMEOUT_MS) });
  } catch (e) {
    const cause = e?.cause?.message ?? e?.cause?.code;
    throw fail(`raw delivery to ${inbox.href} failed: ${e?.message ?? e}${cause ? ` (${cause})` : ""}`);
  }
  let text = "";
  try {
    text = await response.text();
  } catch (e) {
    text = `(could not read the response body: ${e?.message ?? e})`;
  }
  entry.status = response.status;
  entry.ok = response.ok;
  if (!response.ok) entry.error = `inbox answered ${response.status}: ${text.slice(0, 200)}`;
  changed();
  return { id: entry.id, activity, status: response.status, body: text.slice(0, RAW_BODY_CAP), spec };
}

/**
 * Run a delivery after the current inbox request has been answered (the
 * node adapter runs ctx.data.deferred once the response is written).
 */
function background(ctx, fn) {
  const run = () => fn().catch((e) => log.error("background delivery failed: {error}", { error: e }));
  const deferred = ctx.data?.deferred;
  if (Array.isArray(deferred)) deferred.push(run);
  else setTimeout(run, 0);
}

function dedupeRecipients(list) {
  const seen = new Map();
  for (const r of list) if (r?.id && !seen.has(r.id)) seen.set(r.id, r);
  return [...seen.values()];
}

async function signedLoader(ctx, a) {
  return await ctx.getDocumentLoader({ identifier: a.name });
}

async function lookupAny(ctx, a, url) {
  const documentLoader = await signedLoader(ctx, a);
  let obj = null;
  try {
    obj = await ctx.lookupObject(url, { documentLoader });
  } catch (e) {
    throw new HttpError(502, `lookup of ${url} failed: ${e?.message ?? e}`);
  }
  if (obj == null) throw new HttpError(502, `lookup of ${url} returned nothing (fetch failed or document rejected)`);
  return obj;
}

async function lookupActor(ctx, a, url) {
  const obj = await lookupAny(ctx, a, url);
  if (!isActor(obj)) throw new HttpError(400, `${url} is not an actor (got ${obj.constructor.name})`);
  return obj;
}

// ---------------------------------------------------------------------------
// Inbox listeners
// ---------------------------------------------------------------------------

function localActorFromUri(ctx, uri) {
  if (uri == null) return null;
  const parsed = ctx.parseUri(uri);
  if (parsed?.type !== "actor") return null;
  return actors.get(parsed.identifier) ?? null;
}

function markHandled(ctx, activity) {
  const rec = ctx.data?.rec;
  if (rec) {
    rec.handled = true;
    rec.listener = activity.constructor.name;
  }
}

async function onFollow(ctx, follow) {
  markHandled(ctx, follow);
  const a = localActorFromUri(ctx, follow.objectId);
  if (follow.id == null || follow.actorId == null || a == null) {
    note(ctx.data, "Follow ignored: missing id/actor or object is not a local actor");
    return;
  }
  const follower = await follow.getActor({ documentLoader: await signedLoader(ctx, a) });
  if (follower == null || !isActor(follower)) {
    throw new Error(`could not dereference follower ${follow.actorId.href}`);
  }
  const stored = storedRecipient(follower);
  if (a.locked && !a.followers.has(stored.id)) {
    a.pendingFollowers.set(stored.id, { ...stored, followId: follow.id.href, follow });
    note(ctx.data, `follow request from ${stored.id} pending (actor ${a.name} is locked)`);
    changed();
    return;
  }
  a.followers.set(stored.id, { ...stored, followId: follow.id.href });
  note(ctx.data, `${stored.id} now follows ${a.name}; Accept sent after the 202`);
  changed();
  background(ctx, () => sendAccept(ctx, a, follow, stored));
}

async function sendAccept(ctx, a, follow, stored) {
  const accept = new Accept({
    id: newActivityId(a, "accepts"),
    actor: ctx.getActorUri(a.name),
    object: follow,
    to: new URL(stored.id),
  });
  return await send(ctx, a, toRecipient(stored), accept);
}

/** Find outgoing follows matched by an Accept/Reject. */
function matchFollows(ctx, objectId, remoteActor) {
  const candidates = [];
  const scope = ctx.recipient != null && actors.has(ctx.recipient)
    ? [actors.get(ctx.recipient)]
    : [...actors.values()];
  for (const a of scope) {
    for (const f of a.following.values()) {
      if (objectId != null && f.followId === objectId && f.id === remoteActor) candidates.push([a, f]);
    }
  }
  if (candidates.length === 0) {
    // Some servers answer with a bare/unknown object id: fall back to the
    // pending follow of that remote actor.
    for (const a of scope) {
      const f = a.following.get(remoteActor);
      if (f && f.state === "pending") candidates.push([a, f]);
    }
  }
  return candidates;
}

/**
 * Is this Accept/Reject the answer to a Follow?  Decided from the JSON as
 * received: an embedded object must have type Follow; a bare id (or an
 * object without type) must not be the id of something else this peer sent
 * (e.g. an Offer sent with send-raw).  Unknown bare ids keep the old
 * fallback to the sender's pending follow.
 */
function followAnswer(ctx, objectId) {
  const raw = ctx.data?.rec?.activity?.object;
  if (raw != null && typeof raw === "object" && !Array.isArray(raw)) {
    const types = typesOf(raw);
    if (types.length > 0) {
      return types.includes("Follow") ? { follow: true } : { follow: false, type: types.join("/") };
    }
  }
  if (objectId == null) return { follow: true };
  for (const a of actors.values()) {
    for (const f of a.following.values()) if (f.followId === objectId) return { follow: true };
  }
  const sent = sentLog.find((e) => e.id === objectId);
  if (sent != null && sent.type !== "Follow") return { follow: false, type: sent.type ?? "unknown" };
  return { follow: true };
}

async function onAccept(ctx, accept) {
  markHandled(ctx, accept);
  const remote = accept.actorId?.href;
  const objectId = accept.objectId?.href ?? null;
  const shape = followAnswer(ctx, objectId);
  if (!shape.follow) {
    note(ctx.data, `Accept from ${remote} of ${shape.type} ${objectId} recorded; not a follow answer, follow state untouched`);
    return;
  }
  const matches = matchFollows(ctx, objectId, remote);
  if (matches.length === 0) {
    note(ctx.data, `Accept from ${remote} of ${objectId} matched no outgoing follow`);
    return;
  }
  for (const [a, f] of matches) {
    f.state = "accepted";
    f.acceptedAt = new Date().toISOString();
    f.acceptId = accept.id?.href ?? null;
    note(ctx.data, `${a.name} -> ${f.id} follow accepted`);
  }
  changed();
}

async function onReject(ctx, reject) {
  markHandled(ctx, reject);
  const remote = reject.actorId?.href;
  const objectId = reject.objectId?.href ?? null;
  const shape = followAnswer(ctx, objectId);
  if (!shape.follow) {
    note(ctx.data, `Reject from ${remote} of ${shape.type} ${objectId} recorded; not a follow answer, follow state untouched`);
    return;
  }
  let matches = matchFollows(ctx, objectId, remote);
  if (matches.length === 0) {
    // Reject of an already accepted follow (= "remove follower").
    for (const a of actors.values()) {
      const f = a.following.get(remote);
      if (f) matches.push([a, f]);
    }
  }
  for (const [a, f] of matches) {
    a.following.delete(f.id);
    a.rejected.set(f.id, { ...f, state: "rejected", rejectId: reject.id?.href ?? null });
    note(ctx.data, `${a.name} -> ${f.id} follow rejected`);
  }
  if (matches.length === 0) note(ctx.data, `Reject from ${remote} matched no follow`);
  changed();
}

/**
 * The undone activity: embedded object if any, else an earlier delivery we
 * recorded with that id, else a (signed) dereference whose id must match.
 */
async function undoneObject(ctx, undo) {
  const innerId = undo.objectId?.href ?? null;
  const rawObject = ctx.data?.rec?.activity?.object;
  if (rawObject == null || typeof rawObject === "string") {
    const earlier = innerId == null ? null : inboxLog.find((r) => r.id === innerId && r.accepted);
    if (earlier) return { inner: null, innerId, type: earlier.type, innerJson: earlier.activity };
  }
  let inner = null;
  try {
    const a = (ctx.recipient ? actors.get(ctx.recipient) : null) ?? actors.values().next().value;
    inner = await undo.getObject(a ? { documentLoader: await signedLoader(ctx, a) } : {});
  } catch (e) {
    note(ctx.data, `could not dereference undone object ${innerId}: ${e?.message ?? e}`);
  }
  if (inner != null && inner.id?.href !== innerId) {
    // e.g. a fragment id that resolved to the actor document
    note(ctx.data, `undone object ${innerId} dereferenced to ${inner.id?.href}; ignored`);
    inner = null;
  }
  return { inner, innerId, type: inner?.constructor?.name ?? null, innerJson: null };
}

async function onUndo(ctx, undo) {
  markHandled(ctx, undo);
  const remote = undo.actorId?.href;
  const { inner, innerId, type, innerJson } = await undoneObject(ctx, undo);
  if (inner != null && inner.actorId != null && inner.actorId.href !== remote) {
    note(ctx.data, `Undo ignored: ${remote} cannot undo an activity of ${inner.actorId.href}`);
    return;
  }
  if (type === "Follow") {
    const targetId = inner?.objectId?.href ?? idOf(innerJson?.object);
    const a = localActorFromUri(ctx, targetId);
    const scope = a ? [a] : [...actors.values()];
    for (const x of scope) {
      if (x.followers.delete(remote)) note(ctx.data, `${remote} unfollowed ${x.name}`);
      if (x.pendingFollowers.delete(remote)) note(ctx.data, `${remote} withdrew follow request to ${x.name}`);
    }
    changed();
  } else {
    note(ctx.data, `Undo of ${type ?? "unknown"} ${innerId} recorded`);
  }
}

async function onBlock(ctx, block) {
  markHandled(ctx, block);
  const remote = block.actorId?.href;
  const a = localActorFromUri(ctx, block.objectId);
  if (a == null) return;
  // Like Mastodon: a block severs follow relationships both ways.
  a.followers.delete(remote);
  a.pendingFollowers.delete(remote);
  a.following.delete(remote);
  note(ctx.data, `${remote} blocked ${a.name}; follow relationships removed`);
  changed();
}

async function onDelete(ctx, del) {
  markHandled(ctx, del);
  const remote = del.actorId?.href;
  if (remote != null && del.objectId?.href === remote) {
    for (const a of actors.values()) {
      a.followers.delete(remote);
      a.pendingFollowers.delete(remote);
      a.following.delete(remote);
    }
    note(ctx.data, `actor ${remote} deleted; relationships removed`);
    changed();
  }
}

async function recordOnly(ctx, activity) {
  markHandled(ctx, activity);
}

federation
  .setInboxListeners("/users/{identifier}/inbox", "/inbox")
  // Key used for signed fetches made while handling shared-inbox deliveries.
  .setSharedKeyDispatcher(() => {
    const first = actors.keys().next();
    return first.done ? null : { identifier: first.value };
  })
  .on(Follow, onFollow)
  .on(Accept, onAccept)
  .on(Reject, onReject)
  .on(Undo, onUndo)
  .on(Create, recordOnly)
  .on(Update, recordOnly)
  .on(Delete, onDelete)
  .on(Like, recordOnly)
  .on(Announce, recordOnly)
  .on(Block, onBlock)
  // Catch-all so that other types are still seen as "handled".
  .on(Activity, recordOnly)
  .onUnverifiedActivity((ctx, _activity, reason) => {
    const rec = ctx.data?.rec;
    if (rec) rec.unverifiedReason = reason.type;
    // Returning nothing keeps Fedify's default 401.
  })
  .onError((ctx, error) => {
    const rec = ctx.data?.rec;
    if (rec) rec.error = String(error?.message ?? error);
    log.error("inbox error: {error}", { error });
  });

// ---------------------------------------------------------------------------
// Inbox recording (wraps Fedify's inbox handling)
// ---------------------------------------------------------------------------

const INBOX_RE = /^\/users\/([^/]+)\/inbox$/;
const RECORDED_HEADERS = [
  "host", "date", "content-type", "digest", "content-digest", "signature",
  "signature-input", "user-agent", "content-length",
];

function isInboxPath(pathname) {
  return pathname === "/inbox" || INBOX_RE.test(pathname);
}

function concernedActors(rec) {
  // For shared-inbox deliveries: which local actors the activity is about.
  const text = rec.rawText ?? "";
  const result = [];
  for (const a of actors.values()) {
    const uri = actorUri(a.name).href;
    if (
      text.includes(`"${uri}"`) || text.includes(`"${uri}/`) || text.includes(`"${uri}#`) ||
      (rec.actor != null && a.following.has(rec.actor))
    ) {
      result.push(a.name);
    }
  }
  return result;
}

async function handleInboxDelivery(request, url, deferred) {
  const m = INBOX_RE.exec(url.pathname);
  const rawText = await request.clone().text();
  let json = null;
  try {
    json = JSON.parse(rawText);
  } catch { /* recorded as raw text */ }
  const headers = {};
  for (const h of RECORDED_HEADERS) {
    const v = request.headers.get(h);
    if (v != null) headers[h] = v;
  }
  const rec = {
    seq: ++seq,
    receivedAt: new Date().toISOString(),
    inbox: m ? decodeURIComponent(m[1]) : "shared",
    path: url.pathname,
    id: typeof json?.id === "string" ? json.id : null,
    type: typeOf(json),
    objectType: typeof json?.object === "object" ? typeOf(json.object) : null,
    objectTypes: json?.object != null && typeof json.object === "object" ? typesOf(json.object) : [],
    actor: idOf(json?.actor),
    activity: json,
    rawText,
    headers,
    signatureSpec: request.headers.has("signature-input")
      ? "rfc9421"
      : request.headers.has("signature")
      ? "draft-cavage"
      : null,
    httpSignature: null,
    status: null,
    accepted: false,
    signatureVerified: false,
    verifiedBy: null,
    unverifiedReason: null,
    handled: false,
    listener: null,
    effects: [],
    error: null,
    responseBody: null,
    localActors: [],
  };

  if (rec.objectType == null && typeof json?.object === "string") {
    // A bare reference to an activity this peer sent with send-raw (e.g.
    // Accept{object: "<Offer id>"}) gets that activity's type.
    const sent = sentLog.find((e) => e.raw && e.id === json.object);
    if (sent?.type) {
      rec.objectType = sent.type;
      rec.objectTypes = [sent.type];
    }
  }

  // Our own, independent check of the HTTP signature (either spec), so a
  // test can tell "verified by HTTP signature" apart from "verified by an
  // Object Integrity Proof / LD signature", which Fedify also accepts.
  try {
    const ctx0 = ctxFor();
    const r = await verifyRequestDetailed(request.clone(), {
      documentLoader: ctx0.documentLoader,
      contextLoader: ctx0.contextLoader,
    });
    rec.httpSignature = r.verified
      ? { verified: true, keyId: r.key.id?.href ?? null, owner: r.key.ownerId?.href ?? null }
      : {
        verified: false,
        reason: r.reason.type,
        keyId: r.reason.keyId?.href ?? null,
        keyFetchStatus: r.reason.result?.status ?? null,
      };
  } catch (e) {
    rec.httpSignature = { verified: false, reason: `error: ${e?.message ?? e}` };
  }

  let response;
  try {
    response = await federation.fetch(request, {
      contextData: { rec, deferred },
      onNotFound: () => jsonResponse(404, { error: "not found" }),
      onNotAcceptable: () => jsonResponse(406, { error: "not acceptable" }),
    });
  } catch (e) {
    // e.g. JSON-LD processing failed on a @context URL the peer cannot
    // fetch.  Still a 500, as before, but now recorded like any other POST.
    rec.error = String(e?.message ?? e);
    log.error("inbox {path} failed: {error}", { path: url.pathname, error: e });
    response = jsonResponse(500, { error: rec.error });
  }
  rec.status = response.status;
  try {
    rec.responseBody = (await response.clone().text()).slice(0, 1000);
  } catch { /* ignore */ }
  rec.accepted = response.status >= 200 && response.status < 300;
  // Fedify only answers 2xx after the request was authenticated (HTTP
  // signature, Object Integrity Proof or LD signature) and the key owner
  // matched the activity's actor.
  rec.signatureVerified = rec.accepted;
  rec.verifiedBy = rec.accepted
    ? (rec.httpSignature?.verified ? "http-signature" : "proof-or-ld-signature")
    : null;
  if (rec.inbox === "shared") {
    rec.localActors = concernedActors(rec);
    // An Undo etc. of something recorded earlier concerns the same actors.
    const objId = idOf(json?.object);
    const earlier = objId == null ? null : inboxLog.find((r) => r.id === objId);
    for (const n of earlier?.localActors ?? []) if (!rec.localActors.includes(n)) rec.localActors.push(n);
  }
  else rec.localActors = [rec.inbox];
  delete rec.rawText;
  inboxLog.push(rec);
  log.info("inbox {inbox}: {type} {id} -> {status}", rec);
  changed();
  return response;
}

// ---------------------------------------------------------------------------
// Control API
// ---------------------------------------------------------------------------

function jsonResponse(status, body) {
  return new Response(JSON.stringify(body, null, 1), {
    status,
    headers: { "content-type": "application/json; charset=utf-8" },
  });
}

function waitMs(params) {
  const w = Number.parseFloat(params.wait ?? "0");
  if (!Number.isFinite(w) || w <= 0) return 0;
  return Math.min(w, 60) * 1000;
}

function minCount(params) {
  const n = Number.parseInt(params.min ?? "1", 10);
  return Number.isInteger(n) && n >= 0 ? n : 1;
}

function visibilityAddressing(ctx, a, to) {
  const followers = ctx.getFollowersUri(a.name).href;
  switch (to ?? "public") {
    case "public":
      return { visibility: "public", to: [PUBLIC], cc: [followers], toFollowers: true };
    case "unlisted":
      return { visibility: "unlisted", to: [followers], cc: [PUBLIC], toFollowers: true };
    case "followers":
      return { visibility: "followers", to: [followers], cc: [], toFollowers: true };
    default:
      requireUrl(to, "to");
      return { visibility: "direct", to: [to], cc: [], toFollowers: false, direct: to };
  }
}

const routes = {
  "GET /_control/health": () => ({ ok: true }),

  "GET /_control/info": () => ({
    origin: ORIGIN,
    fedify: FEDIFY_VERSION,
    firstKnock: args["first-knock"],
    sharedInbox: new URL("/inbox", ORIGIN).href,
    actors: [...actors.keys()],
  }),

  "POST /_control/actors": async (p) => {
    const name = p.name;
    if (typeof name !== "string" || !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/.test(name)) {
      throw new HttpError(400, "\"name\" must match [A-Za-z0-9_][A-Za-z0-9_.-]*");
    }
    let created = false;
    if (!actors.has(name)) {
      const rsa = await generateRsaKeyPair();
      const ed = await generateCryptoKeyPair("Ed25519");
      actors.set(name, {
        name,
        displayName: typeof p.displayName === "string" ? p.displayName : name,
        summary: typeof p.summary === "string" ? p.summary : null,
        locked: !!p.locked,
        published: Temporal.Now.instant(),
        updated: null,
        keyPairs: [rsa, ed],
        followers: new Map(),
        pendingFollowers: new Map(),
        following: new Map(),
        rejected: new Map(),
        notes: new Map(),
        sent: new Map(),
      });
      created = true;
      changed();
    }
    const ctx = ctxFor();
    return [created ? 201 : 200, {
      id: ctx.getActorUri(name).href,
      name,
      created,
      locked: actors.get(name).locked,
      inbox: ctx.getInboxUri(name).href,
      sharedInbox: ctx.getInboxUri().href,
      followers: ctx.getFollowersUri(name).href,
      following: ctx.getFollowingUri(name).href,
      outbox: ctx.getOutboxUri(name).href,
      keyId: `${ctx.getActorUri(name).href}#main-key`,
    }];
  },

  "GET /_control/actors": () => [...actors.values()].map((a) => ({
    name: a.name,
    id: actorUri(a.name).href,
    locked: a.locked,
    displayName: a.displayName,
  })),

  "POST /_control/follow": async (p) => {
    const a = getActorState(p.actor);
    const targetUrl = requireUrl(p.target, "target");
    const ctx = ctxFor();
    const target = await lookupActor(ctx, a, targetUrl.href);
    const stored = storedRecipient(target);
    const follow = new Follow({
      id: newActivityId(a, "follows"),
      actor: ctx.getActorUri(a.name),
      object: target.id,
      to: target.id,
    });
    const entry = {
      id: target.id.href,
      followId: follow.id.href,
      state: "pending",
      requestedAt: new Date().toISOString(),
      recipient: stored,
      follow,
    };
    a.following.set(target.id.href, entry);
    a.rejected.delete(target.id.href);
    changed();
    try {
      await send(ctx, a, toRecipient(stored), follow, p);
    } catch (e) {
      if (a.following.get(target.id.href) === entry) a.following.delete(target.id.href);
      throw e;
    }
    return { id: follow.id.href, target: target.id.href, state: entry.state };
  },

  "POST /_control/unfollow": async (p) => {
    const a = getActorState(p.actor);
    const targetUrl = requireUrl(p.target, "target").href;
    const f = a.following.get(targetUrl);
    if (f == null) throw new HttpError(404, `${a.name} does not follow ${targetUrl}`);
    const ctx = ctxFor();
    const undo = new Undo({
      id: newActivityId(a, "undo"),
      actor: ctx.getActorUri(a.name),
      object: f.follow,
      to: new URL(f.id),
    });
    a.following.delete(targetUrl);
    changed();
    await send(ctx, a, toRecipient(f.recipient), undo, p);
    return { id: undo.id.href, target: targetUrl };
  },

  "POST /_control/accept-follow": async (p) => {
    const a = getActorState(p.actor);
    const follower = requireUrl(p.follower, "follower").href;
    const pending = a.pendingFollowers.get(follower);
    if (pending == null) throw new HttpError(404, `no pending follow request from ${follower} to ${a.name}`);
    const stored = { id: pending.id, inbox: pending.inbox, sharedInbox: pending.sharedInbox };
    a.pendingFollowers.delete(follower);
    a.followers.set(follower, { ...stored, followId: pending.followId });
    changed();
    const ctx = ctxFor();
    const entry = await sendAccept(ctx, a, pending.follow, stored);
    return { id: entry.id, follower, followId: pending.followId };
  },

  "POST /_control/reject-follow": async (p) => {
    const a = getActorState(p.actor);
    const follower = requireUrl(p.follower, "follower").href;
    const pending = a.pendingFollowers.get(follower) ?? a.followers.get(follower);
    if (pending == null) throw new HttpError(404, `no follow (request) from ${follower} to ${a.name}`);
    const stored = { id: pending.id, inbox: pending.inbox, sharedInbox: pending.sharedInbox };
    a.pendingFollowers.delete(follower);
    a.followers.delete(follower);
    changed();
    const ctx = ctxFor();
    const reject = new Reject({
      id: newActivityId(a, "rejects"),
      actor: ctx.getActorUri(a.name),
      // The original Follow when we still have it, else a reconstruction.
      object: pending.follow ?? new Follow({
        id: new URL(pending.followId),
        actor: new URL(follower),
        object: ctx.getActorUri(a.name),
      }),
      to: new URL(follower),
    });
    await send(ctx, a, toRecipient(stored), reject, p);
    return { id: reject.id.href, follower, followId: pending.followId };
  },

  "POST /_control/note": async (p) => {
    const a = getActorState(p.actor);
    if (typeof p.content !== "string") throw new HttpError(400, "missing \"content\"");
    const ctx = ctxFor();
    const addr = visibilityAddressing(ctx, a, p.to);
    const mentionUrls = Array.isArray(p.mentions) ? p.mentions.map((m) => requireUrl(m, "mentions[]").href) : [];
    const inReplyTo = p.inReplyTo == null ? null : requireUrl(p.inReplyTo, "inReplyTo").href;
    const warnings = [];
    const recipients = [];
    const mentions = [];
    if (addr.direct) {
      recipients.push(storedRecipient(await lookupActor(ctx, a, addr.direct)));
    }
    for (const m of mentionUrls) {
      const actor = await lookupActor(ctx, a, m);
      recipients.push(storedRecipient(actor));
      const host = new URL(actor.id.href).host;
      mentions.push({ href: actor.id.href, name: `@${actor.preferredUsername ?? "unknown"}@${host}` });
      if (!addr.to.includes(actor.id.href) && !addr.cc.includes(actor.id.href)) {
        (addr.direct ? addr.to : addr.cc).push(actor.id.href);
      }
    }
    const replyIsLocal = inReplyTo != null && new URL(inReplyTo).origin === new URL(ORIGIN).origin;
    if (inReplyTo != null && !replyIsLocal) {
      // Deliver replies to the replied-to (remote) author too, as Mastodon does.
      try {
        const parent = await lookupAny(ctx, a, inReplyTo);
        const authorId = parent.attributionId?.href;
        if (authorId && authorId !== actorUri(a.name).href && localActorFromUri(ctx, new URL(authorId)) == null) {
          recipients.push(storedRecipient(await lookupActor(ctx, a, authorId)));
          if (!addr.direct && !addr.cc.includes(authorId) && !addr.to.includes(authorId)) addr.cc.push(authorId);
        }
      } catch (e) {
        warnings.push(`could not resolve inReplyTo author: ${e.message}`);
      }
    }
    if (addr.toFollowers) recipients.push(...a.followers.values());
    const id = randomUUID();
    const noteUri = ctx.getObjectUri(Note, { identifier: a.name, id });
    const n = {
      key: id,
      id: noteUri.href,
      content: p.content,
      summary: typeof p.summary === "string" ? p.summary : null,
      sensitive: !!p.sensitive,
      inReplyTo,
      visibility: addr.visibility,
      to: addr.to,
      cc: addr.cc,
      mentions,
      published: Temporal.Now.instant(),
      deleted: false,
      recipients: dedupeRecipients(recipients).map(({ id, inbox, sharedInbox }) => ({ id, inbox, sharedInbox })),
    };
    a.notes.set(id, n);
    const create = buildCreate(ctx, a, n);
    await send(ctx, a, n.recipients.map(toRecipient), create, p);
    return {
      id: n.id,
      activity: create.id.href,
      visibility: n.visibility,
      to: n.to,
      cc: n.cc,
      recipients: n.recipients.map((r) => r.id),
      warnings,
    };
  },

  "POST /_control/send-raw": async (p) => {
    const a = getActorState(p.actor);
    const inbox = requireUrl(p.inbox, "inbox");
    if (p.activity == null || typeof p.activity !== "object" || Array.isArray(p.activity)) {
      throw new HttpError(400, "\"activity\" must be a JSON object");
    }
    const spec = p.spec ?? "draft-cavage-http-signatures-12";
    if (!KNOCKS.includes(spec)) {
      throw new HttpError(400, `"spec" must be one of ${KNOCKS.join(", ")}`);
    }
    return await sendRaw(a, inbox, p.activity, spec);
  },

  "GET /_control/notes": (p) => {
    const a = getActorState(p.actor);
    return [...a.notes.values()].map((n) => ({
      id: n.id,
      content: n.content,
      visibility: n.visibility,
      inReplyTo: n.inReplyTo,
      deleted: n.deleted,
      to: n.to,
      cc: n.cc,
    }));
  },

  "POST /_control/delete-note": async (p) => {
    const a = getActorState(p.actor);
    if (typeof p.note !== "string") throw new HttpError(400, "missing \"note\"");
    const n = a.notes.get(p.note) ?? [...a.notes.values()].find((x) => x.id === p.note);
    if (n == null) throw new HttpError(404, `no note ${p.note} of ${a.name}`);
    if (n.deleted) throw new HttpError(409, `note ${n.id} already deleted`);
    n.deleted = true;
    changed();
    const ctx = ctxFor();
    const del = new Delete({
      id: newActivityId(a, "deletes"),
      actor: ctx.getActorUri(a.name),
      object: new Tombstone({ id: new URL(n.id) }),
      tos: n.to.map((u) => new URL(u)),
      ccs: n.cc.map((u) => new URL(u)),
    });
    const recipients = dedupeRecipients([
      ...n.recipients,
      ...(n.visibility === "direct" ? [] : a.followers.values()),
    ]);
    await send(ctx, a, recipients.map(toRecipient), del, p);
    return { id: del.id.href, note: n.id, recipients: recipients.map((r) => r.id) };
  },

  "POST /_control/like": (p) => react(p, "Like"),
  "POST /_control/announce": (p) => react(p, "Announce"),
  "POST /_control/unlike": (p) => unreact(p, "Like"),
  "POST /_control/unannounce": (p) => unreact(p, "Announce"),

  "POST /_control/block": async (p) => {
    const a = getActorState(p.actor);
    const targetUrl = requireUrl(p.target, "target").href;
    const ctx = ctxFor();
    const target = await lookupActor(ctx, a, targetUrl);
    const stored = storedRecipient(target);
    const block = new Block({
      id: newActivityId(a, "blocks"),
      actor: ctx.getActorUri(a.name),
      object: target.id,
      to: target.id,
    });
    a.followers.delete(stored.id);
    a.pendingFollowers.delete(stored.id);
    a.following.delete(stored.id);
    a.sent.set(`Block ${stored.id}`, { activity: block, recipients: [stored] });
    changed();
    await send(ctx, a, toRecipient(stored), block, p);
    return { id: block.id.href, target: stored.id };
  },

  "POST /_control/unblock": (p) => unreact({ ...p, object: p.target }, "Block"),

  "POST /_control/update-actor": async (p) => {
    const a = getActorState(p.actor);
    if (typeof p.name === "string") a.displayName = p.name;
    if (typeof p.summary === "string") a.summary = p.summary;
    if (typeof p.locked === "boolean") a.locked = p.locked;
    a.updated = Temporal.Now.instant();
    changed();
    const ctx = ctxFor();
    const person = await buildPerson(ctx, a);
    const update = new Update({
      id: newActivityId(a, "updates"),
      actor: ctx.getActorUri(a.name),
      object: person,
      to: PUBLIC_COLLECTION,
      cc: ctx.getFollowersUri(a.name),
    });
    const recipients = [...a.followers.values()];
    await send(ctx, a, recipients.map(toRecipient), update, p);
    return { id: update.id.href, actor: ctx.getActorUri(a.name).href, recipients: recipients.map((r) => r.id) };
  },

  "GET /_control/inbox": async (p) => {
    const filter = (r) =>
      (p.actor == null || r.inbox === p.actor || (r.inbox === "shared" && r.localActors.includes(p.actor))) &&
      (p.inbox == null || (p.inbox === "shared" ? r.inbox === "shared" : p.inbox === "personal" ? r.inbox !== "shared" : r.inbox === p.inbox)) &&
      (p.type == null || r.type === p.type) &&
      (p.objectType == null || r.objectType === p.objectType || r.objectTypes.includes(p.objectType)) &&
      (p.id == null || r.id === p.id) &&
      (p.from == null || r.actor === p.from) &&
      (p.since == null || r.seq > Number(p.since)) &&
      (p.accepted == null || String(r.accepted) === p.accepted);
    const min = minCount(p);
    const result = await waitFor(() => {
      const list = inboxLog.filter(filter);
      return list.length >= min ? list : null;
    }, waitMs(p));
    return result ?? inboxLog.filter(filter);
  },

  "DELETE /_control/inbox": () => {
    const n = inboxLog.length;
    inboxLog.length = 0;
    return { cleared: n };
  },

  "GET /_control/sent": (p) => sentLog.filter((e) =>
    (p.actor == null || e.actor === p.actor) && (p.type == null || e.type === p.type)
  ),

  "GET /_control/followers": async (p) => {
    const a = getActorState(p.actor);
    const min = minCount(p);
    const list = () => [...a.followers.values()].map(({ id, inbox, sharedInbox, followId }) => ({ id, inbox, sharedInbox, followId }));
    return (await waitFor(() => (list().length >= min ? list() : null), waitMs(p))) ?? list();
  },

  "GET /_control/follow-requests": async (p) => {
    const a = getActorState(p.actor);
    const min = minCount(p);
    const list = () => [...a.pendingFollowers.values()].map(({ id, inbox, sharedInbox, followId }) => ({ id, inbox, sharedInbox, followId }));
    return (await waitFor(() => (list().length >= min ? list() : null), waitMs(p))) ?? list();
  },

  "GET /_control/following": async (p) => {
    const a = getActorState(p.actor);
    const min = minCount(p);
    const list = () => {
      const out = [...a.following.values()]
        .filter((f) => p.state == null || f.state === p.state)
        .map(({ id, followId, state, requestedAt, acceptedAt }) => ({ id, followId, state, requestedAt, acceptedAt: acceptedAt ?? null }));
      if (p.state == null || p.state === "rejected") {
        for (const f of a.rejected.values()) out.push({ id: f.id, followId: f.followId, state: "rejected" });
      }
      return out;
    };
    return (await waitFor(() => (list().length >= min ? list() : null), waitMs(p))) ?? list();
  },

  "POST /_control/lookup": async (p) => {
    const url = requireUrl(p.url, "url").href;
    const ctx = ctxFor();
    let signer = null;
    if (p.actor != null) signer = getActorState(p.actor);
    else if (p.signed !== false && actors.size > 0) signer = actors.values().next().value;
    const documentLoader = signer ? await signedLoader(ctx, signer) : ctx.documentLoader;
    let document;
    let documentUrl;
    try {
      const r = await documentLoader(url);
      document = r.document;
      documentUrl = r.documentUrl;
    } catch (e) {
      throw new HttpError(502, `fetch of ${url} failed: ${e?.message ?? e}`);
    }
    const out = {
      url,
      documentUrl,
      signedBy: signer ? actorUri(signer.name).href : null,
      document,
      parsed: false,
      type: null,
      object: null,
    };
    let obj = null;
    try {
      obj = await ctx.lookupObject(url, { documentLoader });
    } catch (e) {
      out.lookupError = String(e?.message ?? e);
    }
    if (obj != null) {
      out.parsed = true;
      out.type = obj.constructor.name;
      out.object = await obj.toJsonLd({ format: "compact", contextLoader: ctx.contextLoader });
      if (isActor(obj)) {
        const keys = [];
        try {
          for await (const k of obj.getPublicKeys({ documentLoader, contextLoader: ctx.contextLoader })) {
            keys.push({ id: k.id?.href ?? null, owner: k.ownerId?.href ?? null, algorithm: k.publicKey?.algorithm?.name ?? null });
          }
        } catch (e) {
          out.publicKeyError = String(e?.message ?? e);
        }
        out.actor = {
          id: obj.id?.href ?? null,
          preferredUsername: obj.preferredUsername?.toString() ?? null,
          name: obj.name?.toString() ?? null,
          inbox: obj.inboxId?.href ?? null,
          sharedInbox: obj.endpoints?.sharedInbox?.href ?? null,
          followers: obj.followersId?.href ?? null,
          manuallyApprovesFollowers: obj.manuallyApprovesFollowers ?? null,
          publicKeys: keys,
        };
      }
    } else if (out.lookupError == null) {
      out.lookupError = "lookupObject returned null (document could not be parsed, or its id does not match its URL/origin)";
    }
    return out;
  },
};

async function react(p, kind) {
  const a = getActorState(p.actor);
  const objectUrl = requireUrl(p.object, "object").href;
  const ctx = ctxFor();
  const obj = await lookupAny(ctx, a, objectUrl);
  const authorId = obj.attributionId?.href;
  if (authorId == null) throw new HttpError(400, `${objectUrl} has no attributedTo`);
  const recipients = [];
  if (localActorFromUri(ctx, new URL(authorId)) == null) {
    recipients.push(storedRecipient(await lookupActor(ctx, a, authorId)));
  }
  let activity;
  if (kind === "Like") {
    activity = new Like({
      id: newActivityId(a, "likes"),
      actor: ctx.getActorUri(a.name),
      object: new URL(objectUrl),
      to: new URL(authorId),
    });
  } else {
    recipients.push(...a.followers.values());
    activity = new Announce({
      id: newActivityId(a, "announces"),
      actor: ctx.getActorUri(a.name),
      object: new URL(objectUrl),
      to: PUBLIC_COLLECTION,
      ccs: [ctx.getFollowersUri(a.name), new URL(authorId)],
      published: Temporal.Now.instant(),
    });
  }
  const list = dedupeRecipients(recipients);
  a.sent.set(`${kind} ${objectUrl}`, { activity, recipients: list });
  await send(ctx, a, list.map(toRecipient), activity, p);
  return { id: activity.id.href, object: objectUrl, recipients: list.map((r) => r.id) };
}

async function unreact(p, kind) {
  const a = getActorState(p.actor);
  const objectUrl = requireUrl(p.object, kind === "Block" ? "target" : "object").href;
  const key = `${kind} ${objectUrl}`;
  const prev = a.sent.get(key);
  if (prev == null) throw new HttpError(404, `${a.name} has no ${kind} of ${objectUrl}`);
  const ctx = ctxFor();
  const recipients = dedupeRecipients([
    ...prev.recipients,
    ...(kind === "Announce" ? a.followers.values() : []),
  ]);
  const undo = new Undo({
    id: newActivityId(a, "undo"),
    actor: ctx.getActorUri(a.name),
    object: prev.activity,
    tos: prev.activity.toIds,
    ccs: prev.activity.ccIds,
  });
  a.sent.delete(key);
  await send(ctx, a, recipients.map(toRecipient), undo, p);
  return { id: undo.id.href, undone: prev.activity.id.href, recipients: recipients.map((r) => r.id) };
}

async function handleControl(request, url) {
  const key = `${request.method} ${url.pathname}`;
  const route = routes[key];
  if (route == null) {
    const known = Object.keys(routes).some((k) => k.endsWith(` ${url.pathname}`));
    return jsonResponse(known ? 405 : 404, { error: `${known ? "method not allowed" : "no such control endpoint"}: ${key}` });
  }
  let params;
  if (request.method === "POST") {
    const text = await request.text();
    try {
      params = text.trim() === "" ? {} : JSON.parse(text);
    } catch {
      return jsonResponse(400, { error: "request body must be JSON" });
    }
    if (params == null || typeof params !== "object" || Array.isArray(params)) {
      return jsonResponse(400, { error: "request body must be a JSON object" });
    }
  } else {
    params = Object.fromEntries(url.searchParams);
  }
  try {
    const result = await route(params);
    if (Array.isArray(result) && result.length === 2 && typeof result[0] === "number") {
      return jsonResponse(result[0], result[1]);
    }
    return jsonResponse(200, result);
  } catch (e) {
    if (e instanceof HttpError) return jsonResponse(e.status, { error: e.message });
    log.error("control {key} failed: {error}", { key, error: e });
    return jsonResponse(500, { error: String(e?.message ?? e) });
  }
}

// ---------------------------------------------------------------------------
// node:http <-> fetch API adapter
// ---------------------------------------------------------------------------

async function handleNodeRequest(req, res) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const body = Buffer.concat(chunks);
  const url = new URL(req.url ?? "/", `http://${req.headers.host ?? `${hostForUrl}:${boundPort}`}`);
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (Array.isArray(v)) for (const x of v) headers.append(k, x);
    else if (v != null) headers.set(k, v);
  }
  const method = req.method ?? "GET";
  const request = new Request(url, {
    method,
    headers,
    body: method === "GET" || method === "HEAD" ? undefined : body,
  });
  let response;
  const deferred = [];
  if (url.pathname === "/_control" || url.pathname.startsWith("/_control/")) {
    response = await handleControl(request, url);
  } else if (method === "POST" && isInboxPath(url.pathname)) {
    response = await handleInboxDelivery(request, url, deferred);
  } else {
    response = await federation.fetch(request, {
      contextData: { rec: null },
      onNotFound: () => jsonResponse(404, { error: "not found" }),
      onNotAcceptable: () => jsonResponse(406, { error: "not acceptable; ask for application/activity+json" }),
    });
  }
  const out = Buffer.from(await response.arrayBuffer());
  res.statusCode = response.status;
  response.headers.forEach((v, k) => res.setHeader(k, v));
  if (deferred.length > 0) {
    let ran = false;
    const runDeferred = () => {
      if (ran) return;
      ran = true;
      for (const fn of deferred) fn();
    };
    res.once("finish", runDeferred);
    res.once("close", runDeferred);
  }
  res.end(method === "HEAD" ? undefined : out);
}

process.stdout.write(`READY ${ORIGIN}\n`);
log.info("listening on {origin}", { origin: ORIGIN });
