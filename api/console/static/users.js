// Profiles › Users: the utilization banner, the user table and every row's
// actions, for the account's OWNER and ADMINs; a MEMBER's own profile.
import { call } from "./api.js";
import { busy, clearErrors, errorMessage, field, formAlert, h, icon, openDialog, replace,
  showError } from "./dom.js";
import { date, dateTime, plural, ROLE_LABELS, STATUS_LABELS } from "./format.js";
import { openBulkInvite } from "./bulk.js";
import { openLicenseDialog } from "./licenses.js";

const PAGE_SIZE = 50;
const SORTS = [
  ["NAME_ASC", "Name (A–Z)"],
  ["NAME_DESC", "Name (Z–A)"],
  ["CREATED_DESC", "Newest first"],
  ["CREATED_ASC", "Oldest first"],
  ["LAST_ACTIVE_DESC", "Recently active"],
  ["LAST_ACTIVE_ASC", "Least recently active"],
];
const END_REASONS = {
  UNASSIGNED: "removed",
  INVITATION_REVOKED: "invitation revoked",
  INVITATION_EXPIRED: "invitation expired",
  SEAT_REDUCTION: "licence reduction",
  INACTIVITY: "inactivity",
};

// Runs a mutation from a form; refusals are shown at their field (or above
// the form). Resolves to the payload on success, null otherwise.
export async function submitMutation(ctx, form, button, name, variables, payloadKey) {
  clearErrors(form);
  busy(button, true);
  try {
    const { data } = await call(name, variables);
    const payload = data[payloadKey];
    if (payload.errors.length) {
      showError(form, payload.errors[0]);
      return null;
    }
    return payload;
  } catch (error) {
    if (!ctx.handled(error)) showError(form, { field: null, message: errorMessage(error) });
    return null;
  } finally {
    if (button.isConnected) busy(button, false);
  }
}

function actor(kind, user) {
  if (user) return user.name;
  return kind === "API_TOKEN" ? "an API token" : kind === "SYSTEM" ? "the system" : "—";
}

export function renderUsers(main, ctx) {
  const state = {
    search: "", status: "", role: "", license: "", orderBy: "NAME_ASC",
    rows: [], endCursor: null, hasNextPage: false, totalCount: 0, sequence: 0, summary: null,
  };
  const notice = h("p", { class: "notice", role: "status" });
  const banner = h("section", { class: "banner card", "aria-labelledby": "licenses-title" });
  const status = h("p", { class: "list-status", role: "status" });
  const tbody = h("tbody");
  const loadMore = h("button", { type: "button", class: "button secondary", hidden: true,
    onclick: () => loadUsers({ append: true }) }, "Load more");
  const listAlert = h("div", { class: "form-alert", role: "alert", hidden: true });

  const search = h("input", { id: "user-search", type: "search", name: "search",
    placeholder: "Name or email", autocomplete: "off" });
  let searchTimer = null;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      state.search = search.value.trim();
      loadUsers();
    }, 250);
  });
  const select = (id, label, key, options) => {
    const control = h("select", { id, name: key }, options.map(([value, text]) =>
      h("option", { value, selected: value === state[key] }, text)));
    control.addEventListener("change", () => {
      state[key] = control.value;
      loadUsers();
    });
    return h("div", { class: "filter" }, h("label", { for: id }, label), control);
  };
  const toolbar = h("form", { class: "toolbar", role: "search", "aria-label": "Find users",
    onsubmit: (event) => event.preventDefault() },
    h("div", { class: "filter search" }, h("label", { for: "user-search" }, "Search"), search),
    select("filter-status", "Status", "status",
      [["", "All statuses"], ["INVITED", "Invited"], ["ENABLED", "Enabled"], ["DISABLED", "Disabled"]]),
    select("filter-role", "Role", "role",
      [["", "All roles"], ["OWNER", "Owner"], ["ADMIN", "Admin"], ["MEMBER", "Member"]]),
    select("filter-license", "License", "license",
      [["", "All"], ["yes", "With a license"], ["no", "Without a license"]]),
    select("sort", "Sort by", "orderBy", SORTS));

  const table = h("table", { class: "users-table" },
    h("caption", { class: "visually-hidden" }, "Users of the account"),
    h("thead", {}, h("tr", {}, ["Name", "Email", "Role", "Qualification", "Status", "Last active"]
      .map((title) => h("th", { scope: "col" }, title)),
    h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
    tbody);

  replace(main,
    h("nav", { class: "breadcrumb", "aria-label": "Breadcrumb" },
      h("ol", {}, h("li", {}, "Profiles"), h("li", { "aria-current": "page" }, "Users"))),
    h("h1", {}, "Users"),
    notice, banner,
    h("section", { class: "card users", "aria-labelledby": "users-title" },
      h("h2", { id: "users-title", class: "visually-hidden" }, "Users"),
      toolbar, status, listAlert,
      h("div", { class: "table-wrap" }, table),
      h("div", { class: "load-more" }, loadMore)));

  function say(message) {
    notice.textContent = message;
  }

  async function refresh() {
    await Promise.all([loadSummary(), loadUsers({ keep: true })]);
  }

  // --- the banner ---------------------------------------------------------------------------

  async function loadSummary() {
    try {
      const { data } = await call("ConsoleSummary");
      state.summary = data.account;
      await renderBanner();
    } catch (error) {
      if (!ctx.handled(error)) {
        replace(banner, h("div", { class: "form-alert", role: "alert" }, errorMessage(error),
          " ", h("button", { type: "button", class: "button secondary", onclick: refresh },
            "Try again")));
      }
    }
  }

  async function releaseCandidates(count) {
    // The period-end job's order: INVITED users, newest first, then ENABLED
    // non-owners, never or least recently active first.
    const names = [];
    const invited = await call("ConsoleUsers", { first: Math.min(count, 200),
      filter: { status: "INVITED" }, orderBy: "CREATED_DESC" });
    for (const { node } of invited.data.account.users.edges) names.push(node.name);
    if (names.length < count) {
      const enabled = await call("ConsoleUsers", { first: Math.min(count - names.length + 1, 200),
        filter: { status: "ENABLED" }, orderBy: "LAST_ACTIVE_ASC" });
      for (const { node } of enabled.data.account.users.edges) {
        if (!node.isOwner && names.length < count) names.push(node.name);
      }
    }
    return names;
  }

  async function renderBanner() {
    const { licenses, billing } = state.summary;
    const parts = [
      h("h2", { id: "licenses-title" }, "Licenses"),
      h("p", { class: "usage" },
        h("strong", {}, `${licenses.inUse.toLocaleString()} of ${plural(licenses.total, "license", "licenses")}`),
        " in use"),
      h("progress", { max: licenses.total, value: licenses.inUse,
        "aria-label": "Licenses in use" }),
      h("ul", { class: "figures" },
        h("li", {}, h("strong", {}, licenses.available.toLocaleString()), " available"),
        h("li", {}, h("strong", {}, licenses.pendingInvitations.toLocaleString()),
          licenses.pendingInvitations === 1 ? " pending invitation" : " pending invitations"),
        h("li", {}, "Period ends ", h("strong", {}, date(billing.currentPeriodEnd)))),
    ];
    if (licenses.scheduledTotal !== null) {
      const released = licenses.releasedAtScheduledChange;
      let who = null;
      if (released > 0) {
        const names = await releaseCandidates(released);
        who = h("p", {}, `${plural(released, "license", "licenses")} would be released: `,
          names.join(", "), ".");
      }
      parts.push(h("div", { class: "scheduled", role: "note" },
        h("p", {}, h("strong", {}, `Reduction to ${plural(licenses.scheduledTotal, "license", "licenses")}`),
          ` scheduled for ${date(licenses.scheduledAt)}.`),
        who,
        h("button", { type: "button", class: "button secondary", onclick: cancelScheduled },
          "Cancel scheduled reduction")));
    }
    parts.push(h("div", { class: "banner-actions" },
      h("button", { type: "button", class: "button secondary",
        onclick: () => openLicenseDialog(ctx, state.summary, async (message) => {
          say(message);
          await refresh();
        }) }, "Edit number of licenses"),
      h("button", { type: "button", class: "button secondary bulk-invite",
        onclick: () => openBulkInvite(ctx, async (message) => {
          say(message);
          await refresh();
          // The banner was drawn again: focus goes back to the new button.
          banner.querySelector(".bulk-invite")?.focus();
        }) }, "Bulk invite"),
      h("button", { type: "button", class: "button primary", onclick: openInvite },
        "Invite new user")));
    replace(banner, parts);
  }

  async function cancelScheduled(event) {
    const button = event.currentTarget;
    busy(button, true);
    try {
      const { data } = await call("ConsoleCancelScheduledSeatChange");
      const payload = data.cancelScheduledSeatChange;
      say(payload.errors.length ? payload.errors[0].message : "The scheduled reduction is cancelled.");
      await refresh();
    } catch (error) {
      if (!ctx.handled(error)) say(errorMessage(error));
      if (button.isConnected) busy(button, false);
    }
  }

  // --- the table ----------------------------------------------------------------------------

  async function loadUsers({ append = false, keep = false } = {}) {
    state.sequence += 1;
    const sequence = state.sequence;
    const filter = {};
    if (state.search) filter.search = state.search;
    if (state.status) filter.status = state.status;
    if (state.role) filter.role = state.role;
    if (state.license) filter.hasLicense = state.license === "yes";
    const first = keep ? Math.min(Math.max(state.rows.length, PAGE_SIZE), 200) : PAGE_SIZE;
    listAlert.hidden = true;
    busy(loadMore, true);
    status.textContent = "Loading users…";
    try {
      const { data } = await call("ConsoleUsers", {
        first, after: append ? state.endCursor : null, filter, orderBy: state.orderBy,
      });
      if (sequence !== state.sequence) return; // a newer search or filter won
      const users = data.account.users;
      const nodes = users.edges.map((edge) => edge.node);
      state.rows = append ? [...state.rows, ...nodes] : nodes;
      state.endCursor = users.pageInfo.endCursor;
      state.hasNextPage = users.pageInfo.hasNextPage;
      state.totalCount = users.totalCount;
      renderRows(append ? nodes : null);
    } catch (error) {
      if (sequence !== state.sequence || ctx.handled(error)) return;
      status.textContent = "";
      replace(listAlert, errorMessage(error), " ",
        h("button", { type: "button", class: "button secondary", onclick: () => loadUsers() },
          "Try again"));
      listAlert.hidden = false;
    } finally {
      if (sequence === state.sequence) busy(loadMore, false);
    }
  }

  function renderRows(added) {
    if (added) {
      tbody.append(...added.map(row));
    } else {
      replace(tbody, state.rows.map(row));
    }
    status.textContent = state.totalCount === 0
      ? "No users match."
      : `Showing ${state.rows.length.toLocaleString()} of ${plural(state.totalCount, "user", "users")}`;
    loadMore.hidden = !state.hasNextPage;
  }

  function cell(label, ...content) {
    return h("td", { "data-label": label }, h("div", { class: "cell" }, ...content));
  }

  function row(user) {
    const statusLabel = STATUS_LABELS[user.status] ?? "—";
    return h("tr", { "data-user-id": user.id },
      cell("Name", h("span", { class: "name" }, user.name),
        user.isOwner ? h("span", { class: "badge" }, "Primary contact") : null),
      cell("Email", h("span", { class: "email" }, user.email)),
      cell("Role", ROLE_LABELS[user.role]),
      cell("Qualification", user.qualification || "—"),
      cell("Status", h("span", { class: `status status-${(user.status ?? "").toLowerCase()}` },
        statusLabel)),
      cell("Last active", user.lastActiveAt ? dateTime(user.lastActiveAt) : "Never"),
      h("td", { class: "actions", "data-label": "Actions" }, h("div", { class: "row-actions" },
        rowActions(user))));
  }

  function iconButton(name, label, onclick) {
    return h("button", { type: "button", class: "icon-button", "aria-label": label, title: label,
      onclick }, icon(name));
  }

  function textButton(text, label, onclick) {
    return h("button", { type: "button", class: "button small", "aria-label": label, onclick },
      text);
  }

  function rowActions(user) {
    const actions = [
      iconButton("edit", `Edit ${user.name}`, () => openEdit(user)),
      iconButton("history", `License history of ${user.name}`, () => openHistory(user)),
    ];
    if (user.status === "DISABLED") {
      actions.push(textButton("Assign license", `Assign license to ${user.name}`,
        (event) => rowMutation(event, "ConsoleAssignLicense", "assignLicense", user,
          `${user.name} has a license again.`)));
    }
    if (user.status === "INVITED") {
      actions.push(textButton("Resend", `Resend invitation to ${user.name}`,
        (event) => rowMutation(event, "ConsoleResendInvitation", "resendInvitation", user,
          `The invitation to ${user.email} was sent again.`)));
      if (user.invitation?.status === "PENDING") {
        actions.push(textButton("Revoke", `Revoke invitation of ${user.name}`,
          (event) => rowMutation(event, "ConsoleRevokeInvitation", "revokeInvitation", user,
            `The invitation to ${user.email} is revoked.`)));
      }
    }
    if (user.hasLicense && !user.isOwner) {
      actions.push(iconButton("close", `Remove ${user.name}`, () => openRemove(user)));
    }
    if (ctx.viewer.isOwner && user.status === "ENABLED" && !user.isOwner) {
      actions.push(iconButton("up", `Make ${user.name} the primary contact`,
        () => openTransfer(user)));
    }
    return actions;
  }

  async function rowMutation(event, name, payloadKey, user, success) {
    const button = event.currentTarget;
    busy(button, true);
    try {
      const { data } = await call(name, { userId: user.id });
      const payload = data[payloadKey];
      say(payload.errors.length ? payload.errors[0].message : success);
      await refresh();
    } catch (error) {
      if (!ctx.handled(error)) say(errorMessage(error));
    } finally {
      if (button.isConnected) busy(button, false);
    }
  }

  // --- dialogs ------------------------------------------------------------------------------

  function formDialog({ title, describe, fields, submit, onSubmit }) {
    return openDialog({ title, describe, content: (close) => {
      const button = h("button", { type: "submit", class: "button primary" }, submit);
      const form = h("form", { class: "form", novalidate: true },
        formAlert(), fields,
        h("div", { class: "dialog-actions" },
          h("button", { type: "button", class: "button secondary", onclick: close }, "Cancel"),
          button));
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        if (await onSubmit(form, button)) close();
      });
      return form;
    } });
  }

  function values(form) {
    return Object.fromEntries(new FormData(form).entries());
  }

  function openInvite() {
    formDialog({
      title: "Invite new user",
      describe: "The invitation takes one license and is emailed at once.",
      fields: [
        field({ label: "Email", name: "email", type: "email", required: true,
          autocomplete: "off" }),
        field({ label: "First Name", name: "firstName", required: true, maxlength: 100 }),
        field({ label: "Last Name", name: "lastName", required: true, maxlength: 100 }),
        field({ label: "Role", name: "role", value: "MEMBER",
          options: [["MEMBER", "Member"], ["ADMIN", "Admin"]] }),
        field({ label: "Qualification", name: "qualification", maxlength: 200,
          hint: "Optional, e.g. a certification or job title." }),
      ],
      submit: "Send invitation",
      onSubmit: async (form, button) => {
        const input = values(form);
        if (!input.qualification) delete input.qualification;
        const payload = await submitMutation(ctx, form, button, "ConsoleInviteUser", { input },
          "inviteUser");
        if (!payload) return false;
        say(`Invitation sent to ${payload.user.email}.`);
        refresh();
        return true;
      },
    });
  }

  function openEdit(user) {
    const fields = [
      field({ label: "First Name", name: "firstName", value: user.firstName, required: true }),
      field({ label: "Last Name", name: "lastName", value: user.lastName, required: true }),
    ];
    if (!user.isOwner) {
      fields.push(field({ label: "Role", name: "role", value: user.role,
        options: [["MEMBER", "Member"], ["ADMIN", "Admin"]] }));
    }
    fields.push(field({ label: "Qualification", name: "qualification",
      value: user.qualification ?? "", maxlength: 200 }));
    formDialog({
      title: "Edit user",
      describe: user.email,
      fields,
      submit: "Save changes",
      onSubmit: async (form, button) => {
        const payload = await submitMutation(ctx, form, button, "ConsoleUpdateUser",
          { id: user.id, input: values(form) }, "updateUser");
        if (!payload) return false;
        say(`${payload.user.name} is updated.`);
        refresh();
        return true;
      },
    });
  }

  function confirmDialog({ title, describe, confirm, danger, run }) {
    return openDialog({ title, describe, content: (close) => {
      const button = h("button", { type: "submit", class: `button ${danger ? "danger" : "primary"}` },
        confirm);
      const form = h("form", { class: "form" }, formAlert(),
        h("div", { class: "dialog-actions" },
          h("button", { type: "button", class: "button secondary", onclick: close,
            autofocus: true }, "Cancel"),
          button));
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        if (await run(form, button)) close();
      });
      return form;
    } });
  }

  function openRemove(user) {
    confirmDialog({
      title: "Remove Team Member",
      describe: `${user.name} (${user.email}) loses the license at once and is signed out. ` +
        "The user stays on record, disabled, and can be given a license again.",
      confirm: "Remove team member",
      danger: true,
      run: async (form, button) => {
        const payload = await submitMutation(ctx, form, button, "ConsoleUnassignLicense",
          { userId: user.id }, "unassignLicense");
        if (!payload) return false;
        say(`${user.name} no longer holds a license.`);
        refresh();
        return true;
      },
    });
  }

  function openTransfer(user) {
    confirmDialog({
      title: "Change Primary Contact",
      describe: `${user.name} (${user.email}) becomes the account's primary contact (owner). ` +
        "You become an admin and are signed out.",
      confirm: "Make primary contact",
      run: async (form, button) => {
        const payload = await submitMutation(ctx, form, button, "ConsoleTransferOwnership",
          { userId: user.id }, "transferOwnership");
        if (!payload) return false;
        ctx.signedOut(`You made ${payload.newOwner.name} the primary contact. You are now an ` +
          "admin and have been signed out: sign in again to continue.");
        return true;
      },
    });
  }

  function openHistory(user) {
    openDialog({ title: `License history of ${user.name}`, content: (close) => {
      const list = h("div", { class: "history", role: "status" }, "Loading…");
      call("ConsoleLicenseHistory", { id: user.id }).then(({ data }) => {
        const history = data.account.user?.licenseHistory ?? [];
        if (!history.length) {
          replace(list, h("p", {}, "No license so far."));
          return;
        }
        replace(list, h("ol", { class: "history-list" }, history.map((item) => h("li", {},
          h("p", {}, `Assigned ${dateTime(item.assignedAt)} by ${actor(item.assignedByKind, item.assignedBy)}`),
          item.unassignedAt
            ? h("p", {}, `Released ${dateTime(item.unassignedAt)} by ` +
              `${actor(item.unassignedByKind, item.unassignedBy)}` +
              (item.endReason ? ` (${END_REASONS[item.endReason] ?? item.endReason})` : ""))
            : h("p", { class: "current" }, "Holds it now")))));
      }).catch((error) => {
        if (!ctx.handled(error)) replace(list, h("p", { role: "alert" }, errorMessage(error)));
      });
      return h("div", {}, list, h("div", { class: "dialog-actions" },
        h("button", { type: "button", class: "button secondary", onclick: close }, "Close")));
    } });
  }

  refresh();
}

// A MEMBER: itself, the account's name and its primary contact.
export function renderMember(main, ctx) {
  const notice = h("p", { class: "notice", role: "status" });
  const card = h("section", { class: "card profile", "aria-labelledby": "profile-title" });
  replace(main,
    h("nav", { class: "breadcrumb", "aria-label": "Breadcrumb" },
      h("ol", {}, h("li", {}, "Profiles"), h("li", { "aria-current": "page" }, "Users"))),
    h("h1", {}, "Your profile"), notice, card);

  function render() {
    const viewer = ctx.viewer;
    replace(card,
      h("h2", { id: "profile-title" }, viewer.name),
      h("dl", { class: "details" },
        h("dt", {}, "Email"), h("dd", {}, viewer.email),
        h("dt", {}, "Role"), h("dd", {}, ROLE_LABELS[viewer.role]),
        h("dt", {}, "Qualification"), h("dd", {}, viewer.qualification || "—"),
        h("dt", {}, "Status"), h("dd", {}, STATUS_LABELS[viewer.status] ?? "—"),
        h("dt", {}, "Account"), h("dd", {}, ctx.account.name),
        h("dt", {}, "Primary contact"),
        h("dd", {}, `${ctx.account.owner.name} (${ctx.account.owner.email})`)),
      h("p", { class: "hint" }, "Your administrators manage licenses and roles."),
      h("button", { type: "button", class: "button secondary", onclick: edit }, "Edit your name"));
  }

  function edit() {
    openDialog({ title: "Edit your name", content: (close) => {
      const button = h("button", { type: "submit", class: "button primary" }, "Save changes");
      const form = h("form", { class: "form", novalidate: true }, formAlert(),
        field({ label: "First Name", name: "firstName", value: ctx.viewer.firstName }),
        field({ label: "Last Name", name: "lastName", value: ctx.viewer.lastName }),
        h("div", { class: "dialog-actions" },
          h("button", { type: "button", class: "button secondary", onclick: close }, "Cancel"),
          button));
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const input = Object.fromEntries(new FormData(form).entries());
        const payload = await submitMutation(ctx, form, button, "ConsoleUpdateUser",
          { id: ctx.viewer.id, input }, "updateUser");
        if (!payload) return;
        Object.assign(ctx.viewer, payload.user);
        notice.textContent = "Your name is updated.";
        render();
        close();
      });
      return form;
    } });
  }

  render();
}
