// Used by tests/integration/test_streaming.py: masto.js (a real Mastodon client library) subscribes to the
// `user` stream over WebSocket (token in Sec-WebSocket-Protocol, as masto.js sends it), waits for an
// `update` whose content contains a mark, prints the status id as JSON and exits.
// Usage: node masto_stream.mjs ws://host:port TOKEN MARK
import { createStreamingAPIClient } from "masto";

const [streamingApiUrl, accessToken, mark] = process.argv.slice(2);
const client = createStreamingAPIClient({ streamingApiUrl, accessToken, retry: false });
const timer = setTimeout(() => { console.error("no update within 20 s"); process.exit(2); }, 20000);
const subscription = client.user.subscribe();
for await (const event of subscription) {
  if (event.event === "update" && event.payload.content.includes(mark)) {
    console.log(JSON.stringify({ id: event.payload.id, stream: event.stream }));
    clearTimeout(timer);
    subscription.unsubscribe();
    client.close();
    process.exit(0);
  }
}
