#!/usr/bin/env node
// Self-test for the Fedify test peer: starts two peers (A and B) on port 0
// and federates between them through the control API.
//
//   node tests/peer/selftest.mjs        (after `npm ci --prefix tests/peer`)
//
// Prints one line per check and `N passed, N failed` at the end; exits
// non-zero on any failure.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const PEER = path.join(here, "peer.mjs");
const started = Date.now();
const children = new Set();

function startPeer(extraArgs = [], { timeoutMs = 20000 } = {}) {
  const child = spawn(process.execPath, [PEER, "--port", "0", ...extraArgs], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  children.add(child);
  child.on("exit", () => children.delete(child));
  const stderr = [];
  child.stderr.on("data", (d) => stderr.push(d));
  const rl = createInterface({ input: child.stdout });
  const lines = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("peer did not print READY in time")), timeoutMs);
    rl.on("line", (line) => {
      lines.push(line);
      const m = /^READY (http:\/\/\S+)$/.exec(line);
      if (m && lines.length === 1) {
        clearTimeout(timer);
        resolve({ child, url: m[1], lines, stderr });
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`peer exited early (${code}): ${Buffer.concat(stderr).toString()}`));
    });
  });
}

async function ctl(peer, method, p, body) {
  const res = await fetch(new URL(p, peer.url), {
    method,
    headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json();
  if (!res.ok) {
    const e = new Error(`${method} ${p} -> ${res.status}: ${json.error}`);
    e.status = res.status;
    e.body = json;
    throw e;
  }
  return json;
}
const post = (peer, p, body) => ctl(peer, "POST", p, body);
const get = (peer, p, query = {}) => ctl(peer, "GET", `${p}?${new URLSearchParams(query)}`);

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

let passed = 0;
let failed = 0;
async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.message}`);
  }
}

function cleanup() {
  for (const c of children) c.kill("SIGKILL");
}
process.on("exit", cleanup);
const watchdog = setTimeout(() => {
  console.log("FAIL selftest: overall timeout (55 s)");
  console.log(`${passed} passed, ${failed + 1} failed`);
  cleanup();
  process.exit(1);
}, 55000);

let A;
let B;
const u = {};

await check("start two peers, exactly one READY line each", async () => {
  [A, B] = await Promise.all([startPeer(), startPeer(["--first-knock", "draft-cavage-http-signatures-12"])]);
  assert(A.url !== B.url, "peers share a URL");
  assert(A.lines.length === 1 && B.lines.length === 1, "extra stdout lines");
});
if (A == null || B == null) {
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(1);
}

await check("create actors (alice, dave on A; bob, carol[locked] on B)", async () => {
  const [alice, dave, bob, carol] = await Promise.all([
    post(A, "/_control/actors", { name: "alice" }),
    post(A, "/_control/actors", { name: "dave" }),
    post(B, "/_control/actors", { name: "bob", locked: false }),
    post(B, "/_control/actors", { name: "carol", locked: true }),
  ]);
  Object.assign(u, { alice: alice.id, dave: dave.id, bob: bob.id, carol: carol.id });
  assert(alice.id === `${A.url}/users/alice`, `unexpected id ${alice.id}`);
  assert(carol.locked === true, "carol not locked");
  const again = await post(A, "/_control/actors", { name: "alice" });
  assert(again.created === false && again.id === alice.id, "re-create not idempotent");
});

await check("actor document, WebFinger and 404 for unknown actors (served by Fedify)", async () => {
  const res = await fetch(u.bob, { headers: { accept: "application/activity+json" } });
  assert(res.status === 200, `status ${res.status}`);
  assert(/activity\+json/.test(res.headers.get("content-type")), `content-type ${res.headers.get("content-type")}`);
  const doc = await res.json();
  assert(doc.id === u.bob && doc.type === "Person", "bad actor doc");
  assert(doc.publicKey?.id === `${u.bob}#main-key` && doc.publicKey.owner === u.bob, "bad publicKey");
  assert(doc.assertionMethod?.some((k) => k.publicKeyMultibase?.startsWith("z6Mk")), "no Ed25519 multikey");
  assert(doc.endpoints?.sharedInbox === `${B.url}/inbox`, "no sharedInbox");
  const host = new URL(B.url).host;
  const wf = await fetch(`${B.url}/.well-known/webfinger?resource=acct:bob@${host}`);
  const jrd = await wf.json();
  assert(jrd.links.some((l) => l.rel === "self" && l.href === u.bob), "webfinger self link missing");
  const missing = await fetch(`${B.url}/users/nobody`, { headers: { accept: "application/activity+json" } });
  assert(missing.status === 404, `unknown actor status ${missing.status}`);
});

await check("lookup (signed fetch) of a remote actor", async () => {
  const r = await post(A, "/_control/lookup", { url: u.bob, actor: "alice" });
  assert(r.parsed && r.type === "Person", `type ${r.type}`);
  assert(r.signedBy === u.alice, "not signed by alice");
  assert(r.actor.publicKeys.some((k) => k.id === `${u.bob}#main-key` && k.owner === u.bob), "key not parsed");
  assert(r.document.id === u.bob, "raw document id mismatch");
});

await check("follow + auto-accept (alice -> bob)", async () => {
  const f = await post(A, "/_control/follow", { actor: "alice", target: u.bob });
  assert(f.id.startsWith(`${u.alice}#follows/`), `follow id ${f.id}`);
  const following = await get(A, "/_control/following", { actor: "alice", state: "accepted", wait: 10 });
  assert(following.some((x) => x.id === u.bob && x.followId === f.id), "alice's follow not accepted");
  const followers = await get(B, "/_control/followers", { actor: "bob", wait: 5 });
  assert(followers.some((x) => x.id === u.alice), "alice not in bob's followers");
  const inboxB = await get(B, "/_control/inbox", { actor: "bob", type: "Follow", wait: 5 });
  assert(inboxB.length === 1 && inboxB[0].signatureVerified && inboxB[0].verifiedBy === "http-signature", "Follow not verified");
  assert(inboxB[0].httpSignature.keyId === `${u.alice}#main-key`, `keyId ${inboxB[0].httpSignature.keyId}`);
  const accepts = await get(A, "/_control/inbox", { actor: "alice", type: "Accept", wait: 5 });
  assert(accepts.length === 1 && accepts[0].activity.object.id === f.id, "Accept did not embed the Follow");
  // B was told to knock with draft-cavage first, A with RFC 9421.
  assert(inboxB[0].signatureSpec === "rfc9421", `A->B spec ${inboxB[0].signatureSpec}`);
  assert(accepts[0].signatureSpec === "draft-cavage", `B->A spec ${accepts[0].signatureSpec}`);
  assert(accepts[0].verifiedBy === "http-signature", `Accept verifiedBy ${accepts[0].verifiedBy}`);
  const coll = await (await fetch(`${u.bob}/followers`, { headers: { accept: "application/activity+json" } })).json();
  assert(coll.totalItems === 1, `followers totalItems ${coll.totalItems}`);
});

let bobNote;
await check("note delivery to followers (bob -> alice)", async () => {
  const n = await post(B, "/_control/note", { actor: "bob", content: "<p>hello fediverse</p>", to: "public" });
  bobNote = n.id;
  assert(n.recipients.includes(u.alice), "alice not a recipient");
  const creates = await get(A, "/_control/inbox", { actor: "alice", type: "Create", wait: 5 });
  const c = creates.find((r) => r.activity.object?.id === n.id);
  assert(c, "Create not received");
  assert(c.signatureVerified, "Create not verified");
  assert(c.objectType === "Note" && c.activity.object.content === "<p>hello fediverse</p>", "bad note content");
  assert(c.activity.proof?.cryptosuite === "eddsa-jcs-2022", "no FEP-8b32 proof");
});

await check("remote fetch of the note through the object dispatcher", async () => {
  const r = await post(A, "/_control/lookup", { url: bobNote, actor: "alice" });
  assert(r.type === "Note" && r.document.id === bobNote, `lookup type ${r.type}`);
  assert(r.document.attributedTo === u.bob, "bad attributedTo");
});

await check("like + unlike (alice likes bob's note)", async () => {
  const like = await post(A, "/_control/like", { actor: "alice", object: bobNote });
  const likes = await get(B, "/_control/inbox", { actor: "bob", type: "Like", wait: 5 });
  assert(likes.some((r) => r.id === like.id && r.activity.object === bobNote && r.signatureVerified), "Like not received");
  const undo = await post(A, "/_control/unlike", { actor: "alice", object: bobNote });
  const undos = await get(B, "/_control/inbox", { actor: "bob", type: "Undo", objectType: "Like", wait: 5 });
  assert(undos.some((r) => r.id === undo.id && r.activity.object.id === like.id), "Undo(Like) not received");
});

await check("announce + unannounce", async () => {
  const ann = await post(A, "/_control/announce", { actor: "alice", object: bobNote });
  const got = await get(B, "/_control/inbox", { actor: "bob", type: "Announce", wait: 5 });
  assert(got.some((r) => r.id === ann.id && r.activity.object === bobNote), "Announce not received");
  const undo = await post(A, "/_control/unannounce", { actor: "alice", object: bobNote });
  const undos = await get(B, "/_control/inbox", { actor: "bob", type: "Undo", objectType: "Announce", wait: 5 });
  assert(undos.some((r) => r.id === undo.id), "Undo(Announce) not received");
});

await check("direct note with mention (alice -> bob)", async () => {
  const n = await post(A, "/_control/note", {
    actor: "alice", content: "<p>@bob hi</p>", to: u.bob, mentions: [u.bob], inReplyTo: bobNote,
  });
  const creates = await get(B, "/_control/inbox", { actor: "bob", type: "Create", wait: 5 });
  const c = creates.find((r) => r.activity.object?.id === n.id);
  assert(c, "direct Create not received");
  const tag = [].concat(c.activity.object.tag ?? []);
  assert(tag.some((t) => t.type === "Mention" && t.href === u.bob), "Mention tag missing");
  assert(c.activity.object.inReplyTo === bobNote, "inReplyTo missing");
  assert(n.visibility === "direct", "visibility");
});

await check("delete note (bob) -> Delete received, note gone", async () => {
  const d = await post(B, "/_control/delete-note", { actor: "bob", note: bobNote });
  const dels = await get(A, "/_control/inbox", { actor: "alice", type: "Delete", wait: 5 });
  assert(dels.some((r) => r.id === d.id && r.activity.object.id === bobNote), "Delete not received");
  const res = await fetch(bobNote, { headers: { accept: "application/activity+json" } });
  assert(res.status === 404, `deleted note status ${res.status}`);
});

await check("update actor (bob renames) -> Update(Person) received", async () => {
  const up = await post(B, "/_control/update-actor", { actor: "bob", name: "Bob Builder" });
  const ups = await get(A, "/_control/inbox", { actor: "alice", type: "Update", wait: 5 });
  const r = ups.find((x) => x.id === up.id);
  assert(r && r.objectType === "Person" && r.activity.object.name === "Bob Builder", "Update(Person) not received");
  const doc = await (await fetch(u.bob, { headers: { accept: "application/activity+json" } })).json();
  assert(doc.name === "Bob Builder", "actor doc not updated");
});

await check("locked follow: pending until accept-follow (alice -> carol)", async () => {
  const f = await post(A, "/_control/follow", { actor: "alice", target: u.carol });
  const reqs = await get(B, "/_control/follow-requests", { actor: "carol", wait: 5 });
  assert(reqs.some((r) => r.id === u.alice && r.followId === f.id), "no pending request");
  let following = await get(A, "/_control/following", { actor: "alice" });
  assert(following.find((x) => x.id === u.carol)?.state === "pending", "not pending");
  const followersBefore = await get(B, "/_control/followers", { actor: "carol" });
  assert(followersBefore.length === 0, "follower added before approval");
  await post(B, "/_control/accept-follow", { actor: "carol", follower: u.alice });
  following = await get(A, "/_control/following", { actor: "alice", state: "accepted", min: 2, wait: 5 });
  assert(following.some((x) => x.id === u.carol), "not accepted after accept-follow");
  const followers = await get(B, "/_control/followers", { actor: "carol" });
  assert(followers.some((x) => x.id === u.alice), "alice not carol's follower");
});

await check("locked follow: reject-follow (dave -> carol)", async () => {
  await post(A, "/_control/follow", { actor: "dave", target: u.carol });
  await get(B, "/_control/follow-requests", { actor: "carol", wait: 5 });
  await post(B, "/_control/reject-follow", { actor: "carol", follower: u.dave });
  const following = await get(A, "/_control/following", { actor: "dave", state: "rejected", wait: 5 });
  assert(following.some((x) => x.id === u.carol), "reject not seen by dave");
  const rejects = await get(A, "/_control/inbox", { actor: "dave", type: "Reject" });
  assert(rejects.length === 1 && rejects[0].signatureVerified, "Reject not recorded");
});

await check("unfollow -> Undo(Follow) removes follower", async () => {
  await post(A, "/_control/unfollow", { actor: "alice", target: u.bob });
  const undos = await get(B, "/_control/inbox", { actor: "bob", type: "Undo", objectType: "Follow", wait: 5 });
  assert(undos.length === 1 && undos[0].signatureVerified, "Undo(Follow) not received");
  const followers = await get(B, "/_control/followers", { actor: "bob" });
  assert(!followers.some((x) => x.id === u.alice), "alice still follows bob");
});

await check("block -> Block received and relationships severed", async () => {
  // dave follows bob first, then bob blocks dave.
  await post(A, "/_control/follow", { actor: "dave", target: u.bob });
  await get(B, "/_control/followers", { actor: "bob", wait: 5 });
  await post(B, "/_control/block", { actor: "bob", target: u.dave });
  const blocks = await get(A, "/_control/inbox", { actor: "dave", type: "Block", wait: 5 });
  assert(blocks.length === 1 && blocks[0].signatureVerified, "Block not received");
  const following = await get(A, "/_control/following", { actor: "dave", state: "accepted" });
  assert(!following.some((x) => x.id === u.bob), "dave still follows bob after block");
});

await check("shared inbox delivery is attributed to the concerned actor", async () => {
  // alice follows bob again; bob's note goes to A's shared inbox.
  await post(A, "/_control/follow", { actor: "alice", target: u.bob });
  await get(A, "/_control/following", { actor: "alice", state: "accepted", min: 2, wait: 5 });
  const n = await post(B, "/_control/note", { actor: "bob", content: "<p>shared</p>", preferSharedInbox: true });
  const got = await get(A, "/_control/inbox", { actor: "alice", inbox: "shared", type: "Create", wait: 5 });
  assert(got.some((r) => r.activity.object.id === n.id && r.localActors.includes("alice")), "shared Create not attributed");
});

await check("unsigned POST is rejected with 401 and recorded as unverified", async () => {
  const res = await fetch(`${B.url}/users/bob/inbox`, {
    method: "POST",
    headers: { "content-type": "application/activity+json" },
    body: JSON.stringify({
      "@context": "https://www.w3.org/ns/activitystreams",
      id: `${u.alice}#forged`, type: "Like", actor: u.alice, object: `${u.bob}/notes/x`,
    }),
  });
  assert(res.status === 401, `status ${res.status}`);
  const recs = await get(B, "/_control/inbox", { actor: "bob", id: `${u.alice}#forged` });
  assert(recs.length === 1 && recs[0].signatureVerified === false && recs[0].httpSignature.reason === "noSignature", "not recorded as unverified");
});

await check("control API errors are JSON with non-2xx status", async () => {
  for (const [p, body, status] of [
    ["/_control/follow", { actor: "nobody", target: u.bob }, 404],
    ["/_control/follow", { actor: "bob", target: "alice@example.com" }, 400],
    ["/_control/follow", { actor: "bob" }, 400],
    ["/_control/accept-follow", { actor: "carol", follower: u.dave }, 404],
    ["/_control/nope", {}, 404],
    ["/_control/lookup", { url: `${A.url}/users/nobody`, actor: "bob" }, 502],
  ]) {
    try {
      await post(B, p, body);
      throw new Error(`${p} did not fail`);
    } catch (e) {
      assert(e.status === status && typeof e.body?.error === "string", `${p}: ${e.message}`);
    }
  }
});

await check("send-raw: FEP-0837 Offer{Agreement} and Accept{Offer} arrive as sent, follows untouched", async () => {
  // dave asks locked carol again, so a pending follow is there to be misread.
  await post(A, "/_control/follow", { actor: "dave", target: u.carol });
  await get(B, "/_control/follow-requests", { actor: "carol", wait: 5 });
  const followingBefore = await get(A, "/_control/following", { actor: "alice", state: "accepted" });
  assert(followingBefore.some((x) => x.id === u.bob), "precondition: alice follows bob");
  const vf = { vf: "https://w3id.org/valueflows/ont/vf#", stipulates: "vf:stipulates" };
  const agreement = {
    type: "Agreement", id: `${u.alice}/agreements/1`, attributedTo: u.alice,
    stipulates: { type: "Commitment", resourceQuantity: { hasUnit: "one", hasNumericalValue: "2" } },
  };
  const offer = await post(A, "/_control/send-raw", {
    actor: "alice", inbox: `${u.bob}/inbox`,
    activity: { "@context": ["https://www.w3.org/ns/activitystreams", vf], type: "Offer", to: u.bob, object: agreement },
  });
  assert(offer.status === 202 && offer.body === "", `Offer answered ${offer.status} ${offer.body}`);
  assert(offer.id.startsWith(`${u.alice}#offers/`) && offer.activity.id === offer.id, `id ${offer.id}`);
  assert(offer.activity.actor === u.alice && offer.activity["@context"][1].vf === vf.vf, "actor/@context not filled/kept");
  const offers = await get(B, "/_control/inbox", { actor: "bob", type: "Offer", objectType: "Agreement", wait: 5 });
  const o = offers.find((r) => r.id === offer.id);
  assert(o && o.signatureVerified && o.verifiedBy === "http-signature" && o.signatureSpec === "draft-cavage", "Offer not verified");
  assert(JSON.stringify(o.activity) === JSON.stringify(offer.activity), "Offer not recorded exactly as sent");
  assert(o.headers["content-type"] === "application/activity+json" && /^SHA-256=/.test(o.headers.digest), "headers");

  const accept = await post(B, "/_control/send-raw", {
    actor: "bob", inbox: `${u.alice}/inbox`, spec: "rfc9421",
    activity: {
      type: "Accept", to: u.alice,
      object: { type: "Offer", id: offer.id, actor: u.alice, object: agreement },
      result: { ...agreement, id: `${u.bob}/agreements/1`, attributedTo: u.bob },
    },
  });
  assert(accept.status === 202 && accept.id.startsWith(`${u.bob}#accepts/`), `Accept answered ${accept.status} ${accept.body}`);
  const accepts = await get(A, "/_control/inbox", { actor: "alice", type: "Accept", objectType: "Offer", wait: 5 });
  const acc = accepts.find((r) => r.id === accept.id);
  assert(acc && acc.signatureVerified && acc.verifiedBy === "http-signature" && acc.signatureSpec === "rfc9421", "Accept not verified");
  assert(acc.activity.result.type === "Agreement" && acc.activity.object.id === offer.id, "Accept not recorded as sent");
  assert(acc.effects.some((e) => e.includes("not a follow answer")), `effects ${JSON.stringify(acc.effects)}`);

  // Offer/Accept/Reject between dave and carol, who has dave's follow pending:
  // a bare Offer id and an embedded Offer must not settle that follow.
  const daveOffer = await post(A, "/_control/send-raw", {
    actor: "dave", inbox: `${u.carol}/inbox`, activity: { type: "Offer", to: u.carol, object: agreement },
  });
  assert(daveOffer.status === 202, `dave's Offer answered ${daveOffer.status}`);
  const bareAccept = await post(B, "/_control/send-raw", {
    actor: "carol", inbox: `${u.dave}/inbox`, activity: { type: "Accept", object: daveOffer.id },
  });
  const reject = await post(B, "/_control/send-raw", {
    actor: "bob", inbox: `${A.url}/inbox`,
    activity: { type: "Reject", to: u.alice, object: { type: "Offer", id: offer.id, actor: u.alice } },
  });
  assert(bareAccept.status === 202 && reject.status === 202, `answers ${bareAccept.status} ${reject.status}`);
  const bare = await get(A, "/_control/inbox", { actor: "dave", id: bareAccept.id, objectType: "Offer", wait: 5 });
  assert(bare.length === 1 && bare[0].signatureVerified, "bare-id Accept{Offer} not recorded with objectType Offer");
  const rej = await get(A, "/_control/inbox", { inbox: "shared", type: "Reject", objectType: "Offer", wait: 5 });
  assert(rej.some((r) => r.id === reject.id && r.signatureVerified), "Reject{Offer} not recorded");

  const upd = await post(B, "/_control/send-raw", {
    actor: "bob", inbox: `${u.alice}/inbox`, activity: { type: "Update", to: u.alice, object: { ...agreement, id: `${u.bob}/agreements/1` } },
  });
  const receipt = await post(B, "/_control/send-raw", {
    actor: "bob", inbox: `${u.alice}/inbox`,
    activity: { type: "Create", to: u.alice, object: { type: "Document", name: "Receipt", id: `${u.bob}/receipts/1`, attributedTo: u.bob } },
  });
  assert(upd.status === 202 && receipt.status === 202, `answers ${upd.status} ${receipt.status}`);
  assert((await get(A, "/_control/inbox", { id: upd.id, objectType: "Agreement", accepted: "true", wait: 5 })).length === 1, "Update(Agreement)");
  assert((await get(A, "/_control/inbox", { id: receipt.id, objectType: "Document", accepted: "true", wait: 5 })).length === 1, "Create(Document)");

  const followingAfter = await get(A, "/_control/following", { actor: "alice", state: "accepted" });
  assert(JSON.stringify(followingAfter) === JSON.stringify(followingBefore), "alice's follows changed");
  const daveFollowing = await get(A, "/_control/following", { actor: "dave" });
  assert(daveFollowing.find((x) => x.id === u.carol)?.state === "pending", "dave's pending follow was settled by an Offer answer");
  const sent = await get(A, "/_control/sent", { actor: "alice", type: "Offer" });
  assert(sent.some((e) => e.id === offer.id && e.ok === true && e.recipients[0] === `${u.bob}/inbox`), "Offer not in /_control/sent");
});

await check("send-raw: an inbox's non-2xx is data; an unreachable inbox is 502", async () => {
  const forged = await post(A, "/_control/send-raw", {
    actor: "alice", inbox: `${u.bob}/inbox`, activity: { type: "Offer", actor: u.dave, object: { type: "Agreement" } },
  });
  assert(forged.status === 401 && /do not match/.test(forged.body), `status ${forged.status} ${forged.body}`);
  const sent = await get(A, "/_control/sent", { actor: "alice", type: "Offer" });
  assert(sent.some((e) => e.id === forged.id && e.ok === false && /401/.test(e.error)), "failed send not recorded");
  // A @context the receiving peer cannot fetch: 500, and still recorded.
  const unfetchable = await post(A, "/_control/send-raw", {
    actor: "alice", inbox: `${u.bob}/inbox`,
    activity: { "@context": ["https://www.w3.org/ns/activitystreams", "http://127.0.0.1:1/ctx"], type: "Offer", object: { type: "Agreement" } },
  });
  assert(unfetchable.status === 500, `unfetchable @context answered ${unfetchable.status}`);
  const recs = await get(B, "/_control/inbox", { id: unfetchable.id });
  assert(recs.length === 1 && recs[0].status === 500 && recs[0].error && !recs[0].accepted, "500 not recorded");
  for (const [body, status] of [
    [{ actor: "alice", inbox: "http://127.0.0.1:1/inbox", activity: { type: "Offer" } }, 502],
    [{ actor: "alice", inbox: `${u.bob}/inbox`, activity: [] }, 400],
    [{ actor: "alice", inbox: `${u.bob}/inbox`, activity: {}, spec: "rfc9999" }, 400],
    [{ actor: "nobody", inbox: `${u.bob}/inbox`, activity: {} }, 404],
  ]) {
    try {
      await post(A, "/_control/send-raw", body);
      throw new Error(`${JSON.stringify(body)} did not fail`);
    } catch (e) {
      assert(e.status === status && typeof e.body?.error === "string", e.message);
    }
  }
});

await check("peer exits when its stdin closes, and on SIGTERM", async () => {
  const [p1, p2] = await Promise.all([startPeer(), startPeer()]);
  const t0 = Date.now();
  const exit1 = once(p1.child, "exit");
  p1.child.stdin.end();
  const exit2 = once(p2.child, "exit");
  p2.child.kill("SIGTERM");
  const timeout = new Promise((_, rej) => setTimeout(() => rej(new Error("peer did not exit")), 5000));
  const [[code1], [code2]] = await Promise.race([Promise.all([exit1, exit2]), timeout]);
  assert(code1 === 0 && code2 === 0, `exit codes ${code1}, ${code2}`);
  assert(Date.now() - t0 < 5000, "slow exit");
});

clearTimeout(watchdog);
A.child.stdin.end();
B.child.stdin.end();
await Promise.all([once(A.child, "exit"), once(B.child, "exit")]);
const secs = ((Date.now() - started) / 1000).toFixed(1);
console.log(`selftest finished in ${secs} s`);
console.log(`${passed} passed, ${failed} failed`);
if (failed > 0) {
  for (const [n, p] of [["A", A], ["B", B]]) {
    process.stderr.write(`--- peer ${n} stderr ---\n${Buffer.concat(p.stderr).toString().slice(-4000)}\n`);
  }
}
process.exit(failed > 0 ? 1 : 0);
