// Sends one account's `group` call and `track` calls through the real
// @segment/analytics-node SDK, as a product backend would, and prints what
// the SDK did as one line of JSON: the status of every HTTP request it made
// and every delivery failure it reported. Run by tests/sdk_clients.py.
//
//   node send.mjs <tracking URL> <write key> <account> <event>...
import { Analytics } from '@segment/analytics-node'

const [url, writeKey, account, ...events] = process.argv.slice(2)
const base = new URL(url)
const analytics = new Analytics({
  writeKey,
  // The SDK joins host and path with new URL(path, host): a prefix in the
  // host's path (make local's /lambda-url/ingest) must go in `path`.
  host: base.origin,
  path: base.pathname.replace(/\/$/, '') + '/v1/batch',
  flushAt: 50,
  flushInterval: 500,
  maxRetries: 3,
})
const seen = { statuses: [], failures: [] }
analytics.on('http_response', (r) => seen.statuses.push(r.status))
analytics.on('error', (e) => seen.failures.push({ code: e.code, reason: String(e.reason) }))

analytics.group({
  userId: 'u-node',
  groupId: account,
  traits: {
    name: `${account} (Node)`,
    plan: 'smb',
    contract_start: new Date(Date.now() - 40 * 86400e3).toISOString().slice(0, 10),
    seats: 10,
    arr: 120000,
    admin_email: `admin@${account}.example`,
    csm_email: 'maya@vendor.example',
  },
})
for (const event of events) {
  analytics.track({ userId: 'u-node', event, context: { groupId: account } })
}
await analytics.closeAndFlush({ timeout: 60000 })
console.log(JSON.stringify(seen))
