// Deduplicating a webhook with the dedup module from Node.js, using plain ioredis.
//
// DEDUP.* are ordinary commands: `redis.call(...)` sends them. The script plays two workers
// receiving the same delivery and checks every reply, so it doubles as a test: it exits non-zero
// if the server answers anything unexpected.
//
//     node webhook_dedup.js [port]
"use strict";

const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const Redis = require("ioredis");

const LEASE_MS = 30000;
const RETENTION_MS = 96 * 3600 * 1000;

// A fresh random secret per attempt: only the holder can extend, release or complete.
const newOwner = () => crypto.randomBytes(20).toString("hex");
const fingerprint = (body) => crypto.createHash("sha256").update(body).digest("hex");

async function claim(redis, eventId, body, owner) {
  const reply = await redis.call("DEDUP.CLAIM", `webhook:${eventId}`, LEASE_MS, owner, "FP", fingerprint(body));
  return { state: String(reply[0]), details: reply.slice(1) };
}

// What a webhook endpoint does with one delivery: resolves to [HTTP status, response body].
async function handle(redis, eventId, body, createRecord) {
  const owner = newOwner();
  const { state, details } = await claim(redis, eventId, body, owner);
  switch (state) {
    case "CLAIMED": {
      let recordId;
      try {
        recordId = await createRecord(body);
      } catch (err) {
        // Let the sender's retry run the work again instead of waiting for the lease to end.
        await redis.call("DEDUP.RELEASE", `webhook:${eventId}`, owner);
        throw err;
      }
      const done = await redis.call("DEDUP.COMPLETE", `webhook:${eventId}`, RETENTION_MS, owner, "RESULT", recordId);
      assert.equal(done, 1, "lease lost before completion");
      return [200, recordId];
    }
    case "DONE":
      return [200, details[1] ?? ""]; // replay the first answer
    case "HELD":
      return [409, "in progress"]; // the sender retries later
    case "MISMATCH":
      return [422, "same id, different payload"];
    default:
      throw new Error(`unexpected reply ${state}`);
  }
}

async function main() {
  const port = Number(process.argv[2] ?? 6379);
  const redis = new Redis({ host: "127.0.0.1", port, lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  const body = '{"type":"payment.succeeded","amount":4200}';
  const records = [];
  const createRecord = async (payload) => {
    records.push(payload);
    return `record-${records.length}`;
  };
  try {
    const ownerA = newOwner();
    let r = await claim(redis, "evt_js_1", body, ownerA);
    assert.equal(r.state, "CLAIMED");
    const token = r.details[0];
    r = await claim(redis, "evt_js_1", body, newOwner());
    assert.equal(r.state, "HELD");
    assert.equal(await redis.call("DEDUP.COMPLETE", "webhook:evt_js_1", RETENTION_MS, ownerA, "RESULT", "record-1"), 1);
    r = await claim(redis, "evt_js_1", body, newOwner());
    assert.equal(r.state, "DONE");
    assert.equal(String(r.details[1]), "record-1");
    r = await claim(redis, "evt_js_1", '{"amount":1}', newOwner());
    assert.equal(r.state, "MISMATCH");
    const status = await redis.call("DEDUP.STATUS", "webhook:evt_js_1");
    assert.equal(String(status[0]), "DONE");
    assert.equal(status[2], token);

    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await handle(redis, "evt_js_2", body, createRecord));
    assert.deepEqual(answers, [[200, "record-1"], [200, "record-1"], [200, "record-1"]]);
    assert.equal(records.length, 1);

    await assert.rejects(redis.call("DEDUP.CLAIM", "webhook:evt_js_3", 0, newOwner()), /^ReplyError: ERR ttl-ms must be an integer/);
    console.log(`node (ioredis ${require("ioredis/package.json").version}): claim/complete flow OK`);
  } finally {
    redis.disconnect();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
