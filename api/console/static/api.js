// The one way the console talks to the service: POST /graphql, each operation
// named by its SHA-256 (the documents are in the service's persisted-query
// manifest, so this works with PERSISTED_QUERIES=allowlist too).
import { operations } from "./operations.js";
import { currentToken } from "./session.js";

export class ApiError extends Error {
  constructor(code, message, { requestId = null, retryAfter = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
  }
}

const UNAVAILABLE = "The service is unavailable right now. Try again in a moment.";

// A mutation refused with SERVICE_UNAVAILABLE is retried by the user with the
// same Idempotency-Key, so that it runs at most once.
const retryKeys = new Map();

function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function send(request, headers) {
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers,
      body: JSON.stringify(request),
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new ApiError("SERVICE_UNAVAILABLE", UNAVAILABLE);
  }
  const requestId = response.headers.get("X-Request-ID");
  if (response.status === 503) {
    const retryAfter = Number(response.headers.get("Retry-After") || 5);
    throw new ApiError("SERVICE_UNAVAILABLE", UNAVAILABLE, { requestId, retryAfter });
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError("INTERNAL", `Unexpected answer from the service (HTTP ${response.status}).`, {
      requestId,
    });
  }
  return { body, requestId };
}

// Runs the named operation. Resolves to {data, errors} (errors: those of
// fields that could not be read, each with its path); rejects with an ApiError
// for a refusal of the whole request (UNAUTHENTICATED, SERVICE_UNAVAILABLE…).
export async function call(name, variables = {}) {
  const operation = operations[name];
  if (!operation) throw new Error(`unknown operation ${name}`);
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  const token = currentToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let fingerprint = null;
  if (operation.type === "mutation" && token) {
    fingerprint = `${operation.id}:${JSON.stringify(variables)}`;
    headers["Idempotency-Key"] = retryKeys.get(fingerprint) ?? newKey();
  }
  const request = {
    operationName: name,
    variables,
    extensions: { persistedQuery: { version: 1, sha256Hash: operation.id } },
  };
  try {
    let { body, requestId } = await send(request, headers);
    if (firstCode(body) === "PERSISTED_QUERY_NOT_FOUND") {
      ({ body, requestId } = await send({ ...request, query: operation.body }, headers));
    }
    const errors = Array.isArray(body.errors) ? body.errors : [];
    const data = body.data ?? null;
    const beforeExecution = data === null && errors.every((error) => !error.path);
    if (errors.length && beforeExecution) {
      const [first] = errors;
      const code = first.extensions?.code ?? "INTERNAL";
      const message = code === "SERVICE_UNAVAILABLE" ? UNAVAILABLE : first.message;
      throw new ApiError(code, message, { requestId });
    }
    if (fingerprint) retryKeys.delete(fingerprint);
    return { data, errors, requestId };
  } catch (error) {
    if (fingerprint && error instanceof ApiError && error.code === "SERVICE_UNAVAILABLE") {
      retryKeys.set(fingerprint, headers["Idempotency-Key"]);
    } else if (fingerprint) {
      retryKeys.delete(fingerprint);
    }
    throw error;
  }
}

function firstCode(body) {
  return Array.isArray(body?.errors) ? body.errors[0]?.extensions?.code : undefined;
}

// A field error from call()'s errors: the first whose path ends at `field`.
export function fieldError(errors, field) {
  return errors.find((error) => error.path && error.path[error.path.length - 1] === field) ?? null;
}
