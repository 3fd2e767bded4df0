// Signing in (with the account choice when an email signs in to several
// accounts) and accepting an invitation (setting a password).
import { call } from "./api.js";
import { busy, clearErrors, errorMessage, field, formAlert, h, replace, showError } from "./dom.js";
import { startSession } from "./session.js";

// Accounts this browser signed in to (id and name only, never a token), offered
// when an email signs in to several accounts.
const KNOWN_ACCOUNTS = "licenses.accounts";

export function rememberAccount(account) {
  try {
    const known = JSON.parse(window.localStorage.getItem(KNOWN_ACCOUNTS) || "[]")
      .filter((item) => item && item.id !== account.id);
    known.unshift({ id: account.id, name: account.name });
    window.localStorage.setItem(KNOWN_ACCOUNTS, JSON.stringify(known.slice(0, 10)));
  } catch {
    // storage disabled or full: the choice is then typed in
  }
}

function knownAccounts() {
  try {
    const known = JSON.parse(window.localStorage.getItem(KNOWN_ACCOUNTS) || "[]");
    return Array.isArray(known) ? known.filter((item) => item && typeof item.id === "string") : [];
  } catch {
    return [];
  }
}

function shell(main, title, notice, ...content) {
  replace(main, h("section", { class: "card auth", "aria-labelledby": "auth-title" },
    h("p", { class: "brand-line" }, "Licenses & Users"),
    h("h1", { id: "auth-title" }, title),
    notice ? h("p", { class: "notice", role: "status" }, notice) : null,
    ...content));
}

export function renderSignIn(main, { notice, onSignedIn }) {
  document.title = "Sign in · Licenses & Users";
  const accountField = field({ label: "Account ID", name: "accountId", autocomplete: "off",
    hint: "This email signs in to several accounts: choose the one to sign in to." });
  accountField.hidden = true;
  const accountInput = accountField.querySelector("input");
  const known = knownAccounts();
  if (known.length) {
    const listId = "known-accounts";
    accountInput.setAttribute("list", listId);
    accountField.append(h("datalist", { id: listId },
      known.map((account) => h("option", { value: account.id, label: account.name }))));
  }
  const button = h("button", { type: "submit", class: "button primary" }, "Sign in");
  const form = h("form", { class: "form", novalidate: true }, formAlert(),
    field({ label: "Email", name: "email", type: "email", autocomplete: "username",
      required: true }),
    field({ label: "Password", name: "password", type: "password",
      autocomplete: "current-password", required: true }),
    accountField, button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const values = new FormData(form);
    const input = { email: values.get("email"), password: values.get("password") };
    if (!accountField.hidden && values.get("accountId")) input.accountId = values.get("accountId");
    busy(button, true);
    try {
      const { data } = await call("ConsoleLogin", { input });
      const payload = data.login;
      if (payload.errors.length) {
        const [refusal] = payload.errors;
        if (refusal.code === "ACCOUNT_REQUIRED" || refusal.field === "accountId") {
          accountField.hidden = false;
          showError(form, { ...refusal, field: "accountId" });
        } else {
          showError(form, refusal);
        }
        return;
      }
      startSession(payload.token);
      await onSignedIn();
    } catch (error) {
      showError(form, { field: null, message: errorMessage(error) });
    } finally {
      if (button.isConnected) busy(button, false);
    }
  });
  shell(main, "Sign in", notice, form);
  form.querySelector("input").focus();
}

export function renderAcceptInvitation(main, { token, onSignedIn }) {
  document.title = "Accept your invitation · Licenses & Users";
  if (!token) {
    shell(main, "Accept your invitation", null,
      h("p", { role: "alert", class: "form-alert" },
        "This invitation link is incomplete. Open the link from your email again."),
      h("p", {}, h("a", { href: "/" }, "Go to sign in")));
    return;
  }
  const button = h("button", { type: "submit", class: "button primary" }, "Set password and sign in");
  const form = h("form", { class: "form", novalidate: true }, formAlert(),
    field({ label: "Password", name: "password", type: "password", autocomplete: "new-password",
      required: true, hint: "10 to 256 characters." }),
    field({ label: "Repeat the password", name: "repeat", type: "password",
      autocomplete: "new-password", required: true }),
    button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const values = new FormData(form);
    if (values.get("password") !== values.get("repeat")) {
      showError(form, { field: "repeat", message: "The two passwords differ." });
      return;
    }
    busy(button, true);
    try {
      const { data } = await call("ConsoleAcceptInvitation", {
        input: { token, password: values.get("password") },
      });
      const payload = data.acceptInvitation;
      if (payload.errors.length) {
        showError(form, payload.errors[0]);
        return;
      }
      startSession(payload.token);
      history.replaceState(null, "", "/");
      await onSignedIn();
    } catch (error) {
      showError(form, { field: null, message: errorMessage(error) });
    } finally {
      if (button.isConnected) busy(button, false);
    }
  });
  shell(main, "Accept your invitation", "Choose a password to activate your account.", form);
  form.querySelector("input").focus();
}
