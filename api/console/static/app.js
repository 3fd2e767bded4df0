// The console's entry point: who is signed in, the header and navigation, and
// which view shows (#users, #charges, #audit-log, #api-tokens, #inactive-licences).
import { call } from "./api.js";
import { renderApiTokens, renderAuditLog, renderCharges } from "./admin.js";
import { errorMessage, h, replace } from "./dom.js";
import { renderReclaim } from "./reclaim.js";
import { ROLE_LABELS } from "./format.js";
import { currentToken, endSession } from "./session.js";
import { rememberAccount, renderAcceptInvitation, renderSignIn } from "./signin.js";
import { renderMember, renderUsers } from "./users.js";

const root = document.getElementById("app");
const VIEWS = {
  users: { title: "Users", render: renderUsers },
  charges: { title: "Charges", render: renderCharges, admin: true },
  "audit-log": { title: "Audit log", render: renderAuditLog, admin: true },
  "api-tokens": { title: "API tokens", render: renderApiTokens, admin: true },
  "inactive-licences": { title: "Inactive licences", render: renderReclaim, admin: true },
};

let session = null; // {viewer, account} while signed in

function main() {
  const element = h("main", { id: "main", class: "main", tabindex: "-1" });
  return element;
}

function signedOut(notice) {
  endSession();
  session = null;
  for (const dialog of document.querySelectorAll("dialog")) dialog.close();
  const element = main();
  replace(root, element);
  renderSignIn(element, { notice, onSignedIn: start });
}

// The context every view gets: the viewer, and how to react to a refusal of
// the whole request. Returns true when it handled the error.
function context() {
  return {
    viewer: session.viewer,
    account: session.account,
    signedOut,
    handled(error) {
      if (error?.code === "UNAUTHENTICATED") {
        signedOut("Your session has ended. Sign in again.");
        return true;
      }
      return false;
    },
  };
}

function currentView() {
  const name = location.hash.replace(/^#/, "") || "users";
  const view = VIEWS[name] ?? VIEWS.users;
  const isAdmin = session.viewer.role !== "MEMBER";
  return view.admin && !isAdmin ? VIEWS.users : view;
}

function header() {
  const { viewer, account } = session;
  const isAdmin = viewer.role !== "MEMBER";
  const active = currentView();
  const links = isAdmin ? Object.entries(VIEWS).map(([name, view]) => h("li", {},
    h("a", { href: `#${name}`, "aria-current": view === active ? "page" : null }, view.title)))
    : [];
  return h("header", { class: "topbar" },
    h("div", { class: "topbar-inner" },
      h("a", { class: "skip-link", href: "#main" }, "Skip to content"),
      h("p", { class: "brand" }, "Licenses & Users"),
      h("p", { class: "account-name" }, account.name),
      h("div", { class: "who" },
        h("span", { class: "who-name" }, viewer.name),
        h("span", { class: "who-role" }, ROLE_LABELS[viewer.role]),
        h("button", { type: "button", class: "button secondary small", onclick: signOut },
          "Sign out"))),
    links.length ? h("nav", { class: "tabs", "aria-label": "Console" }, h("ul", {}, links)) : null);
}

async function signOut(event) {
  event.currentTarget.disabled = true;
  try {
    await call("ConsoleLogout");
  } catch {
    // the session ends in this tab whatever the service answered
  }
  signedOut("You are signed out.");
}

function renderView() {
  const view = currentView();
  document.title = `${view.title} · Licenses & Users`;
  const element = main();
  replace(root, header(), element);
  const ctx = context();
  if (view === VIEWS.users && session.viewer.role === "MEMBER") {
    renderMember(element, ctx);
  } else {
    view.render(element, ctx);
  }
}

async function start() {
  const loading = main();
  replace(root, loading);
  replace(loading, h("p", { class: "loading", role: "status" }, "Loading…"));
  try {
    const { data } = await call("ConsoleViewer");
    if (!data?.viewer) {
      signedOut("Sign in with your email and password.");
      return;
    }
    session = { viewer: data.viewer, account: data.account };
    rememberAccount(data.account);
    renderView();
  } catch (error) {
    if (error?.code === "UNAUTHENTICATED") {
      signedOut("Your session has ended. Sign in again.");
      return;
    }
    replace(loading, h("div", { class: "card" },
      h("p", { role: "alert", class: "form-alert" }, errorMessage(error)),
      h("button", { type: "button", class: "button primary", onclick: start }, "Try again")));
  }
}

window.addEventListener("hashchange", () => {
  if (session) renderView();
});

function boot() {
  if (location.pathname === "/accept-invitation") {
    // The token leaves the address bar (and the history) at once.
    const token = new URLSearchParams(location.search).get("token");
    history.replaceState(null, "", "/accept-invitation");
    endSession();
    const element = main();
    replace(root, element);
    renderAcceptInvitation(element, { token, onSignedIn: start });
    return;
  }
  if (currentToken()) {
    start();
  } else {
    signedOut(null);
  }
}

boot();
