// Apollo Client with its automatic persisted queries link, against a live server.
//   node apollo.mjs URL SCENARIO [DOCUMENT]   (LICENSES_TOKEN: the bearer token)
// Prints one JSON object: what each request carried and what the client got.
import { createHash } from 'node:crypto';
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client/core/index.js';
import { createPersistedQueryLink } from '@apollo/client/link/persisted-queries/index.js';
import { print } from 'graphql';

const [url, scenario, extra] = process.argv.slice(2);
const token = process.env.LICENSES_TOKEN;
const sha256 = (text) => createHash('sha256').update(text).digest('hex');

// Every request the client sends, as the server saw it, with the answer's status.
const requests = [];

async function recordingFetch(input, init = {}) {
  const target = new URL(typeof input === 'string' ? input : input.url);
  const body = init.body ? JSON.parse(init.body) : null;
  const extensions = body?.extensions ?? JSON.parse(target.searchParams.get('extensions') ?? 'null');
  const sent = {
    method: init.method ?? 'GET',
    hash: extensions?.persistedQuery?.sha256Hash ?? null,
    withDocument: Boolean(body?.query ?? target.searchParams.get('query')),
  };
  const response = await fetch(input, init);
  const text = await response.clone().text();
  let codes = [];
  try {
    codes = (JSON.parse(text).errors ?? []).map((error) => error.extensions?.code);
  } catch {}
  requests.push({ ...sent, status: response.status, codes });
  return response;
}

function client({ generateHash, useGET = false } = {}) {
  const persisted = createPersistedQueryLink(
    generateHash ? { generateHash, useGETForHashedQueries: useGET } : { sha256, useGETForHashedQueries: useGET },
  );
  const http = new HttpLink({
    uri: url,
    fetch: recordingFetch,
    headers: { authorization: `Bearer ${token}` },
  });
  return new ApolloClient({
    link: persisted.concat(http),
    cache: new InMemoryCache(),
    defaultOptions: { query: { fetchPolicy: 'no-cache' } },
  });
}

async function outcome(run) {
  try {
    const result = await run();
    return { data: result.data ?? null, error: null };
  } catch (error) {
    const graphQLErrors = error.graphQLErrors?.length
      ? error.graphQLErrors
      : error.networkError?.result?.errors ?? [];
    return {
      data: null,
      error: {
        message: error.message,
        codes: graphQLErrors.map((e) => e.extensions?.code),
        status: error.networkError?.statusCode ?? null,
      },
    };
  }
}

// A document no server has seen before: its operation name is new every run.
const fresh = `Account_${Date.now()}_${Math.random().toString(36).slice(2, 8)}`;
const ACCOUNT = gql(`query ${fresh} { account { id name } }`);
const report = { scenario, steps: {} };

if (scenario === 'print') {
  // The text Apollo sends for a document (its cache adds __typename): what a
  // manifest generated from the client's operations holds.
  const body = print(client().cache.transformDocument(gql(extra)));
  report.body = body;
} else if (scenario === 'apq') {
  // Miss, then hash + document; a second client (nothing cached) hits at once.
  report.steps.first = await outcome(() => client().query({ query: ACCOUNT }));
  report.steps.firstRequests = requests.splice(0);
  report.steps.second = await outcome(() => client().query({ query: ACCOUNT }));
  report.steps.secondRequests = requests.splice(0);
  report.steps.get = await outcome(() => client({ useGET: true }).query({ query: ACCOUNT }));
  report.steps.getRequests = requests.splice(0);
} else if (scenario === 'mismatch') {
  // A hash that is not the document's: the server must not run the document.
  const wrong = async () => sha256('not the document');
  report.steps.first = await outcome(() => client({ generateHash: wrong }).query({ query: ACCOUNT }));
  report.steps.firstRequests = requests.splice(0);
} else if (scenario === 'allowlist') {
  // extra: the manifest's document (a query); any other document is refused.
  const listed = gql(extra);
  const other = gql(`query Other_${Date.now()} { account { id } }`);
  report.steps.listed = await outcome(() => client().query({ query: listed }));
  report.steps.listedRequests = requests.splice(0);
  report.steps.other = await outcome(() => client().query({ query: other }));
  report.steps.otherRequests = requests.splice(0);
} else {
  throw new Error(`unknown scenario ${scenario}`);
}
console.log(JSON.stringify(report));
