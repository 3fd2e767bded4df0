// "Edit number of licenses": the preview ("Amount Due Now"), the License
// Agreement and "Complete Change", which sends back the previewed amount and
// proration instant so the charge is exactly the one shown.
import { call, fieldError } from "./api.js";
import { busy, clearErrors, errorMessage, field, formAlert, h, openDialog, replace,
  showError } from "./dom.js";
import { date, money, plural } from "./format.js";

export function openLicenseDialog(ctx, summary, done) {
  const { licenses, billing } = summary;
  openDialog({
    title: "Edit number of licenses",
    describe: `${plural(licenses.inUse, "license", "licenses")} of ${licenses.total.toLocaleString()} ` +
      `in use. Each license costs ${money(billing.seatPriceCents, billing.currency)} per ` +
      `${billing.interval === "YEAR" ? "year" : "month"}.`,
    className: "license-dialog",
    content: (close) => {
      const totalField = field({ label: "Number of licenses", name: "total", type: "number",
        value: String(licenses.total), min: 1, max: 100000, inputmode: "numeric" });
      const total = totalField.querySelector("input");
      const amount = h("output", { class: "amount", "aria-live": "polite" },
        money(0, billing.currency));
      const effect = h("p", { class: "effect", "aria-live": "polite" });
      const agreementText = h("div", { class: "agreement-text", tabindex: "0",
        role: "region", "aria-label": "License Agreement text" }, "Loading…");
      const checkboxId = "accept-agreement";
      const agreement = h("div", { class: "field checkbox", "data-field": "acceptAgreement" },
        h("input", { type: "checkbox", id: checkboxId, name: "acceptAgreement",
          "aria-describedby": `${checkboxId}-error` }),
        h("label", { for: checkboxId }, "I accept the License Agreement"),
        h("p", { class: "field-error", id: `${checkboxId}-error`, hidden: true }));
      const complete = h("button", { type: "submit", class: "button primary" }, "Complete Change");
      const form = h("form", { class: "form", novalidate: true },
        formAlert(), totalField,
        h("div", { class: "amount-due" }, h("span", {}, "Amount Due Now"), amount),
        effect,
        h("h3", {}, "License Agreement"), agreementText, agreement,
        h("div", { class: "dialog-actions" },
          h("button", { type: "button", class: "button secondary", onclick: close }, "Cancel"),
          complete));

      let agreementVersion = null;
      let preview = null; // the answer for the current value of `total`
      let pending = null; // the preview request in flight
      let pendingFor = null; // the total `pending` asks about
      let timer = null;

      call("ConsoleLicenseAgreement").then(({ data }) => {
        agreementVersion = data.licenseAgreement.version;
        replace(agreementText, data.licenseAgreement.text);
      }).catch((error) => {
        if (!ctx.handled(error)) replace(agreementText, errorMessage(error));
      });

      function describe(answer) {
        amount.value = money(answer.amountDueNowCents, answer.currency);
        amount.textContent = amount.value;
        if (answer.kind === "INCREASE") {
          effect.textContent = `${plural(answer.newTotal - answer.currentTotal, "license is", "licenses are")} ` +
            "added now, charged for the rest of the current period.";
        } else if (answer.kind === "DECREASE") {
          effect.textContent = `The reduction to ${plural(answer.newTotal, "license", "licenses")} ` +
            `takes effect on ${date(answer.effectiveAt)}; the licenses stay available until then.` +
            (answer.licensesOverNewTotal > 0
              ? ` ${plural(answer.licensesOverNewTotal, "license", "licenses")} in use above it ` +
                "must be released first."
              : "");
        } else {
          effect.textContent = licenses.scheduledTotal !== null
            ? "Keeping the current number cancels the scheduled reduction."
            : "No change.";
        }
      }

      function refreshPreview() {
        clearErrors(form);
        const wanted = Number.parseInt(total.value, 10);
        preview = null;
        if (!Number.isInteger(wanted)) {
          pending = null;
          showError(form, { field: "total", message: "Enter a whole number of licenses." });
          return null;
        }
        pendingFor = wanted;
        const request = call("ConsoleSeatChangePreview", { total: wanted }).then(({ data, errors }) => {
          if (pending !== request) return null;
          const answer = data?.account?.seatChangePreview;
          if (!answer) {
            const refusal = fieldError(errors, "seatChangePreview") ?? errors[0];
            showError(form, { field: "total", message: refusal?.message ?? "Not possible." });
            return null;
          }
          preview = answer;
          describe(answer);
          return answer;
        }).catch((error) => {
          if (pending === request && !ctx.handled(error)) {
            showError(form, { field: null, message: errorMessage(error) });
          }
          return null;
        });
        pending = request;
        return request;
      }

      total.addEventListener("input", () => {
        clearTimeout(timer);
        preview = null;
        timer = setTimeout(refreshPreview, 250);
      });

      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        clearTimeout(timer);
        busy(complete, true);
        try {
          const wanted = Number.parseInt(total.value, 10);
          let answer = preview && preview.newTotal === wanted ? preview : null;
          if (!answer) answer = await (pending && pendingFor === wanted ? pending : refreshPreview());
          if (!answer) return;
          clearErrors(form);
          const { data } = await call("ConsoleChangeSeatCount", { input: {
            total: answer.newTotal,
            acceptAgreement: form.querySelector("#accept-agreement").checked,
            agreementVersion: agreementVersion ?? answer.agreementVersion,
            expectedAmountDueCents: answer.amountDueNowCents,
            prorationDate: answer.prorationDate,
          } });
          const payload = data.changeSeatCount;
          if (payload.errors.length) {
            const [refusal] = payload.errors;
            if (refusal.code === "AMOUNT_MISMATCH" || refusal.field === "prorationDate") {
              await refreshPreview();
              showError(form, { field: null, message: `${refusal.message} The amount is updated: check it and try again.` });
            } else {
              showError(form, refusal);
            }
            return;
          }
          close();
          const message = payload.charge
            ? `Licenses changed to ${payload.licenses.total.toLocaleString()}; ` +
              `${money(payload.charge.amountCents, payload.charge.currency)} charged now.`
            : payload.licenses.scheduledTotal !== null
              ? `The reduction to ${plural(payload.licenses.scheduledTotal, "license", "licenses")} ` +
                `is scheduled for ${date(payload.licenses.scheduledAt)}.`
              : "The number of licenses is unchanged.";
          await done(message);
        } catch (error) {
          if (!ctx.handled(error)) showError(form, { field: null, message: errorMessage(error) });
        } finally {
          if (complete.isConnected) busy(complete, false);
        }
      });

      refreshPreview();
      return form;
    },
  });
}
