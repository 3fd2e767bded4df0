// graphql-http's audit of the GraphQL-over-HTTP specification against a live server.
//   node audit.mjs URL        (LICENSES_TOKEN: a bearer token sent with every request)
// Prints one JSON object: counts by result and every audit that did not pass.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
const token = process.env.LICENSES_TOKEN;

function fetchWithToken(input, init = {}) {
  const headers = new Headers(init.headers);
  if (token) headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
}

const results = await auditServer({ url, fetchFn: fetchWithToken });
const counts = { ok: 0, warn: 0, error: 0 };
const notOk = [];
for (const result of results) {
  counts[result.status] += 1;
  if (result.status !== 'ok') {
    notOk.push({ id: result.id, name: result.name, status: result.status, reason: result.reason });
  }
}
console.log(JSON.stringify({ total: results.length, ...counts, notOk }));
