// The session token: in this module's memory, and in sessionStorage so that a
// reload keeps the session in this tab (closing the tab ends it there). Never
// in localStorage or a cookie: other tabs and later visits do not inherit it.
const KEY = "licenses.session";
let token = null;
let loaded = false;

function storage() {
  try {
    return window.sessionStorage;
  } catch {
    return null; // storage disabled: the session lives in memory only
  }
}

export function currentToken() {
  if (!loaded) {
    loaded = true;
    token = storage()?.getItem(KEY) ?? null;
  }
  return token;
}

export function startSession(newToken) {
  token = newToken;
  loaded = true;
  storage()?.setItem(KEY, newToken);
}

export function endSession() {
  token = null;
  loaded = true;
  storage()?.removeItem(KEY);
}
