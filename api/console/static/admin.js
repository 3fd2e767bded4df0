// For the OWNER and ADMINs: charges, the audit log and API tokens.
import { call } from "./api.js";
import { busy, errorMessage, field, formAlert, h, openDialog, replace } from "./dom.js";
import { date, dateTime, money } from "./format.js";
import { submitMutation } from "./users.js";

const PAGE_SIZE = 50;
const CHARGE_KINDS = { SEAT_INCREASE: "License increase", RENEWAL: "Renewal" };

function page(main, title, ...content) {
  replace(main, h("h1", {}, title), ...content);
}

// A table fed by a connection, with "Load more" following its endCursor.
export function pagedTable(ctx, { caption, columns, operation, connection, cells }) {
  const tbody = h("tbody");
  const status = h("p", { class: "list-status", role: "status" }, "Loading…");
  const alert = h("div", { class: "form-alert", role: "alert", hidden: true });
  let after = null;
  let shown = 0;
  const more = h("button", { type: "button", class: "button secondary", hidden: true,
    onclick: () => load() }, "Load more");

  async function load() {
    busy(more, true);
    alert.hidden = true;
    try {
      const { data } = await call(operation, { first: PAGE_SIZE, after });
      const found = data.account[connection];
      tbody.append(...found.edges.map(({ node }) => h("tr", {},
        cells(node).map((value, index) => h("td", { "data-label": columns[index] }, value)))));
      shown += found.edges.length;
      after = found.pageInfo.endCursor;
      more.hidden = !found.pageInfo.hasNextPage;
      status.textContent = found.totalCount === 0 ? "Nothing yet."
        : `Showing ${shown.toLocaleString()} of ${found.totalCount.toLocaleString()}`;
    } catch (error) {
      if (!ctx.handled(error)) {
        status.textContent = "";
        replace(alert, errorMessage(error), " ",
          h("button", { type: "button", class: "button secondary", onclick: () => load() },
            "Try again"));
        alert.hidden = false;
      }
    } finally {
      if (more.isConnected) busy(more, false);
    }
  }

  load();
  return h("section", { class: "card" }, status, alert,
    h("div", { class: "table-wrap" }, h("table", { class: "data-table" },
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, columns.map((column) => h("th", { scope: "col" }, column)))),
      tbody)),
    h("div", { class: "load-more" }, more));
}

export function renderCharges(main, ctx) {
  page(main, "Charges", pagedTable(ctx, {
    caption: "Charges, newest first",
    columns: ["Date", "Kind", "Licenses", "Price per license", "Period", "Amount"],
    operation: "ConsoleCharges",
    connection: "charges",
    cells: (charge) => [
      dateTime(charge.createdAt),
      CHARGE_KINDS[charge.kind] ?? charge.kind,
      charge.quantity.toLocaleString(),
      money(charge.unitAmountCents, charge.currency),
      `${date(charge.periodStart)} – ${date(charge.periodEnd)}`,
      money(charge.amountCents, charge.currency),
    ],
  }));
}

function words(action) {
  const text = action.toLowerCase().replaceAll("_", " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function details(data) {
  if (data === null || data === undefined) return "—";
  const text = typeof data === "string" ? data : JSON.stringify(data);
  return h("code", { class: "details-json" }, text.length > 300 ? `${text.slice(0, 300)}…` : text);
}

export function renderAuditLog(main, ctx) {
  page(main, "Audit log", pagedTable(ctx, {
    caption: "Audit events, newest first",
    columns: ["Time", "Action", "By", "User", "Details"],
    operation: "ConsoleAuditLog",
    connection: "auditLog",
    cells: (event) => [
      dateTime(event.createdAt),
      words(event.action),
      event.actor?.name ?? (event.actorKind === "API_TOKEN"
        ? `API token ${event.actorToken?.name ?? ""}`.trim() : "System"),
      event.target?.name ?? "—",
      details(event.data),
    ],
  }));
}

export function renderApiTokens(main, ctx) {
  const list = h("div", { role: "status" }, "Loading…");
  const secretBox = h("div", { class: "secret", hidden: true });
  const button = h("button", { type: "submit", class: "button primary" }, "Create token");
  const form = h("form", { class: "form inline-form", novalidate: true }, formAlert(),
    field({ label: "Token name", name: "name", required: true, maxlength: 100,
      hint: "A name to recognise it by, e.g. the integration that uses it." }),
    button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = new FormData(form).get("name");
    const payload = await submitMutation(ctx, form, button, "ConsoleCreateApiToken", { name },
      "createApiToken");
    if (!payload) return;
    form.reset();
    const secretId = "new-token-secret";
    replace(secretBox,
      h("p", {}, h("strong", {}, `Token “${payload.apiToken.name}” created.`),
        " Copy its secret now: it is shown only once."),
      h("label", { for: secretId }, "Secret"),
      h("input", { id: secretId, class: "secret-value", readonly: true, value: payload.secret,
        onfocus: (focusEvent) => focusEvent.currentTarget.select() }));
    secretBox.hidden = false;
    secretBox.querySelector("input").focus();
    await load();
  });

  async function load() {
    try {
      const { data } = await call("ConsoleApiTokens");
      const tokens = data.account.apiTokens;
      if (!tokens.length) {
        replace(list, h("p", {}, "No API tokens."));
        return;
      }
      replace(list, h("div", { class: "table-wrap" }, h("table", { class: "data-table" },
        h("caption", { class: "visually-hidden" }, "API tokens"),
        h("thead", {}, h("tr", {}, ["Name", "Starts with", "Created", "Last used", "State"]
          .map((column) => h("th", { scope: "col" }, column)),
        h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
        h("tbody", {}, tokens.map((token) => h("tr", {},
          h("td", { "data-label": "Name" }, token.name),
          h("td", { "data-label": "Starts with" }, h("code", {}, token.prefix)),
          h("td", { "data-label": "Created" }, `${date(token.createdAt)}` +
            (token.createdBy ? ` by ${token.createdBy.name}` : "")),
          h("td", { "data-label": "Last used" }, token.lastUsedAt ? dateTime(token.lastUsedAt) : "Never"),
          h("td", { "data-label": "State" }, token.revokedAt ? `Revoked ${date(token.revokedAt)}` : "Active"),
          h("td", { class: "actions", "data-label": "Actions" }, token.revokedAt ? null
            : h("button", { type: "button", class: "button small",
              "aria-label": `Revoke ${token.name}`, onclick: () => revoke(token) }, "Revoke"))))))));
    } catch (error) {
      if (!ctx.handled(error)) replace(list, h("p", { role: "alert" }, errorMessage(error)));
    }
  }

  function revoke(token) {
    openDialog({ title: "Revoke API token",
      describe: `“${token.name}” stops working at once. This cannot be undone.`,
      content: (close) => {
        const confirm = h("button", { type: "submit", class: "button danger" }, "Revoke token");
        const revokeForm = h("form", { class: "form" }, formAlert(),
          h("div", { class: "dialog-actions" },
            h("button", { type: "button", class: "button secondary", onclick: close,
              autofocus: true }, "Cancel"),
            confirm));
        revokeForm.addEventListener("submit", async (event) => {
          event.preventDefault();
          const payload = await submitMutation(ctx, revokeForm, confirm, "ConsoleRevokeApiToken",
            { id: token.id }, "revokeApiToken");
          if (!payload) return;
          close();
          await load();
        });
        return revokeForm;
      } });
  }

  page(main, "API tokens",
    h("section", { class: "card" }, h("h2", {}, "Create an API token"),
      h("p", { class: "hint" }, "A token acts with admin rights on the whole account. " +
        "Its secret is shown once, when it is created."),
      form, secretBox),
    h("section", { class: "card" }, h("h2", {}, "Tokens"), list));
  load();
}
