// For the OWNER and ADMINs: the reclaim policy (release the licences of people
// who stopped using them) and its preview, computed by the service's own rules.
import { pagedTable } from "./admin.js";
import { call } from "./api.js";
import { errorMessage, field, formAlert, h, replace, uid } from "./dom.js";
import { dateTime } from "./format.js";
import { submitMutation } from "./users.js";

function checkbox({ label, name, checked, hint }) {
  const id = uid(`field-${name}`);
  const hintId = `${id}-hint`;
  return h("div", { class: "field checkbox", "data-field": name },
    h("input", { id, name, type: "checkbox", checked, "aria-describedby": hintId }),
    h("label", { for: id }, label),
    h("p", { class: "hint checkbox-hint", id: hintId }, hint),
    h("p", { class: "field-error", hidden: true }));
}

function policyForm(ctx, policy, onSaved) {
  const exempt = new Map(policy.exemptUsers.map((user) => [user.id, user]));
  const exemptList = h("ul", { class: "exempt-list", "aria-label": "Exempt users" });
  const findStatus = h("p", { class: "hint", role: "status" });
  const find = h("input", { id: "exempt-search", type: "search", placeholder: "Name or email",
    autocomplete: "off" });

  function showExempt() {
    replace(exemptList, ...(exempt.size ? [...exempt.values()].map((user) => h("li", {},
      `${user.name} (${user.email}) `,
      h("button", { type: "button", class: "button small secondary",
        onclick: () => { exempt.delete(user.id); showExempt(); find.focus(); } },
      "Remove", h("span", { class: "visually-hidden" }, ` ${user.name}`))))
      : [h("li", { class: "hint" }, "Nobody is exempt by name.")]));
  }

  async function addExempt() {
    const search = find.value.trim();
    if (!search) return;
    findStatus.textContent = "Looking…";
    try {
      const { data } = await call("ConsoleFindUser", { search });
      const [match] = data.account.users.edges.map(({ node }) => node);
      if (!match) {
        findStatus.textContent = `No user matches “${search}”.`;
        return;
      }
      exempt.set(match.id, match);
      find.value = "";
      findStatus.textContent = `${match.name} is exempt once you save.`;
      showExempt();
    } catch (error) {
      if (!ctx.handled(error)) findStatus.textContent = errorMessage(error);
    }
  }

  find.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      addExempt();
    }
  });
  showExempt();

  const button = h("button", { type: "submit", class: "button primary" }, "Save policy");
  const form = h("form", { class: "form", novalidate: true, "aria-labelledby": "policy-title" },
    formAlert(),
    checkbox({ label: "Release inactive licences", name: "enabled", checked: policy.enabled,
      hint: "Off by default. The owner never loses a licence; invited people are left to " +
        "their invitation's expiry." }),
    field({ label: "Days without signing in", name: "inactiveDays", type: "number",
      value: String(policy.inactiveDays), required: true, min: 14, max: 365,
      inputmode: "numeric", hint: "14 to 365 days since the last sign-in or request." }),
    field({ label: "Notice days", name: "noticeDays", type: "number",
      value: String(policy.noticeDays), required: true, min: 0, max: 30, inputmode: "numeric",
      hint: "0 to 30: the person is emailed this many days before; 0 sends no notice." }),
    checkbox({ label: "Never release admins", name: "exemptAdmins", checked: policy.exemptAdmins,
      hint: "Admins keep their licences however long they are away." }),
    h("div", { class: "field", "data-field": "exemptUserIds" },
      h("label", { for: "exempt-search" }, "Exempt people"),
      h("p", { class: "hint" }, "Type a name or email and press Enter to add someone."),
      h("div", { class: "exempt-add" }, find,
        h("button", { type: "button", class: "button secondary", onclick: addExempt }, "Add")),
      findStatus, exemptList,
      h("p", { class: "field-error", hidden: true })),
    h("div", {}, button));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = new FormData(form);
    const input = {
      enabled: values.get("enabled") === "on",
      inactiveDays: Number.parseInt(values.get("inactiveDays"), 10),
      noticeDays: Number.parseInt(values.get("noticeDays"), 10),
      exemptAdmins: values.get("exemptAdmins") === "on",
      exemptUserIds: [...exempt.keys()],
    };
    const payload = await submitMutation(ctx, form, button, "ConsoleSetReclaimPolicy",
      { input }, "setReclaimPolicy");
    if (payload) onSaved(payload.policy);
  });
  return form;
}

function preview(ctx, policy) {
  const intro = policy.enabled
    ? "Who loses a licence, and when, if nobody signs in again. Soonest first."
    : "The policy is off: this is who it would release, and when, once turned on.";
  return h("div", { class: "preview" },
    h("h2", { id: "preview-title" }, "Preview"),
    h("p", { class: "hint" }, intro),
    pagedTable(ctx, {
      caption: "People the policy would release, soonest first",
      columns: ["Name", "Email", "Inactive since", "Released on", "Notice sent"],
      operation: "ConsoleReclaimPreview",
      connection: "reclaimPreview",
      cells: (candidate) => [
        candidate.user.name,
        candidate.user.email,
        dateTime(candidate.inactiveSince),
        dateTime(candidate.releaseAt),
        candidate.noticeSentAt ? dateTime(candidate.noticeSentAt) : "Not yet",
      ],
    }));
}

export function renderReclaim(main, ctx) {
  const saved = h("p", { class: "notice", role: "status" });
  const body = h("div", {}, h("p", { class: "loading", role: "status" }, "Loading…"));

  function show(policy) {
    replace(body,
      h("section", { class: "card" },
        h("h2", { id: "policy-title" }, "Reclaim policy"),
        policyForm(ctx, policy, (stored) => {
          show(stored);
          saved.textContent = stored.enabled ? "Policy saved: it applies from now."
            : "Policy saved: it is off.";
        })),
      preview(ctx, policy));
  }

  async function load() {
    try {
      const { data } = await call("ConsoleReclaimPolicy");
      show(data.account.reclaimPolicy);
    } catch (error) {
      if (!ctx.handled(error)) {
        replace(body, h("div", { class: "card" },
          h("p", { role: "alert", class: "form-alert" }, errorMessage(error)),
          h("button", { type: "button", class: "button primary", onclick: load }, "Try again")));
      }
    }
  }

  replace(main, h("h1", {}, "Inactive licences"), saved, body);
  load();
}
