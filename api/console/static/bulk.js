// "Bulk invite": a CSV file read in the browser (the format of
// `licenses users import`, docs/csv-import.md), a preview of its rows, then
// inviteUsers in batches of at most 500 and every row's result.
import { call } from "./api.js";
import { busy, errorMessage, formAlert, h, openDialog, replace, uid } from "./dom.js";
import { plural, ROLE_LABELS } from "./format.js";

export const BATCH_SIZE = 500;
const PREVIEW_ROWS = 100;
const RESULT_ROWS = 1000;
const REQUIRED = ["email", "firstName", "lastName"];
const OPTIONAL = ["role", "qualification"];
const COLUMNS = Object.fromEntries([...REQUIRED, ...OPTIONAL].map((name) => [columnKey(name), name]));
const TRIGGERS = "=+-@\t\r";

function columnKey(name) {
  return name.replace(/[\s_-]+/g, "").toLowerCase();
}

// A cell the users export neutralised against formula injection, as it was.
function restoreCell(cell) {
  return cell.length > 1 && cell[0] === "'" && TRIGGERS.includes(cell[1]) ? cell.slice(1) : cell;
}

// RFC 4180 records, each with the line it starts on (quoted fields may span lines).
export function csvRecords(text) {
  const records = [];
  let cells = [];
  let cell = "";
  let quoted = false;
  let line = 1;
  let start = 1;
  let i = 0;
  const endRecord = () => {
    cells.push(cell);
    records.push({ line: start, cells });
    cells = [];
    cell = "";
  };
  while (i < text.length) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 2;
        continue;
      }
      if (ch === '"') {
        quoted = false;
      } else {
        if (ch === "\n") line += 1;
        cell += ch;
      }
      i += 1;
      continue;
    }
    if (ch === '"' && cell === "") {
      quoted = true;
    } else if (ch === ",") {
      cells.push(cell);
      cell = "";
    } else if (ch === "\r" || ch === "\n") {
      if (ch === "\r" && text[i + 1] === "\n") i += 1;
      endRecord();
      line += 1;
      start = line;
    } else {
      cell += ch;
    }
    i += 1;
  }
  if (quoted) {
    records.push({ line: start, cells: [...cells, cell], problem: "Not valid CSV: a quote is never closed." });
  } else if (cell !== "" || cells.length) {
    endRecord();
  }
  return records.filter((record) => record.problem || record.cells.some((c) => c.trim() !== ""));
}

function parseRole(text) {
  const role = text.trim().toUpperCase();
  if (!role) return "MEMBER";
  return ["ADMIN", "MEMBER", "OWNER"].includes(role) ? role : null;
}

// {rows: [{line, input} | {line, problem}], ignored} or {fileError}.
export function parseUsersCsv(text) {
  const records = csvRecords(text);
  if (!records.length) {
    return { fileError: `The file is empty: its first line must name the columns ${REQUIRED.join(", ")}.` };
  }
  const [header, ...body] = records;
  if (header.problem) return { fileError: `The first line is not valid CSV.` };
  const positions = {};
  const ignored = [];
  for (const [index, raw] of header.cells.entries()) {
    const name = COLUMNS[columnKey(raw)];
    if (!name) {
      if (raw.trim()) ignored.push(raw.trim());
      continue;
    }
    if (name in positions) return { fileError: `The column ${name} is named twice in the first line.` };
    positions[name] = index;
  }
  const missing = REQUIRED.filter((name) => !(name in positions));
  if (missing.length) {
    return { fileError: `Missing column(s) ${missing.join(", ")}: the first line must name the ` +
      `columns ${REQUIRED.join(", ")} (and optionally ${OPTIONAL.join(", ")}).` };
  }
  const width = header.cells.length;
  const rows = body.map(({ line, cells, problem }) => {
    if (problem) return { line, problem };
    if (cells.length > width) {
      return { line, problem: `The row has ${cells.length} fields; the first line names ${width} columns.` };
    }
    const cell = (name) => (name in positions ? restoreCell(cells[positions[name]] ?? "") : "");
    const role = parseRole(cell("role"));
    if (!role) return { line, email: cell("email"), problem: "The role must be ADMIN or MEMBER." };
    const input = { email: cell("email"), firstName: cell("firstName"), lastName: cell("lastName"), role };
    const qualification = cell("qualification");
    if (qualification.trim()) input.qualification = qualification;
    return { line, input };
  });
  return { rows, ignored };
}

function readText(file) {
  return file.arrayBuffer().then((buffer) => {
    try {
      // A byte-order mark is dropped; anything that is not UTF-8 is refused.
      return new TextDecoder("utf-8", { fatal: true }).decode(buffer);
    } catch {
      throw new Error("The file is not UTF-8: save it as UTF-8 (CSV UTF-8) and choose it again.");
    }
  });
}

function cell(label, ...content) {
  return h("td", { "data-label": label }, ...content);
}

function table(caption, headings, rows) {
  return h("div", { class: "table-wrap" }, h("table", { class: "data-table bulk-table" },
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {}, headings.map((title) => h("th", { scope: "col" }, title)))),
    h("tbody", {}, rows)));
}

// `done(message)` runs when the dialog closes after something was sent.
export function openBulkInvite(ctx, done) {
  let sent = null; // the summary, once rows were sent
  const { dialog } = openDialog({
    title: "Bulk invite",
    describe: "Invite many people at once from a CSV file. Each invitation takes one license " +
      "and is emailed at once.",
    className: "bulk-dialog",
    content: (close) => {
      const inputId = uid("bulk-file");
      const hintId = `${inputId}-hint`;
      const fileInput = h("input", { id: inputId, type: "file", name: "file",
        accept: ".csv,text/csv", "aria-describedby": hintId });
      const alert = formAlert();
      const preview = h("section", { class: "bulk-preview", hidden: true,
        "aria-labelledby": `${inputId}-preview` });
      const progress = h("p", { class: "bulk-progress", role: "status" });
      const summary = h("p", { class: "bulk-summary", role: "status", "aria-live": "polite" });
      const results = h("section", { class: "bulk-results", hidden: true,
        "aria-labelledby": `${inputId}-results` });
      const send = h("button", { type: "submit", class: "button primary", disabled: true },
        "Send invitations");
      const form = h("form", { class: "form", novalidate: true },
        h("div", { class: "field", "data-field": "file" },
          h("label", { for: inputId }, "CSV file"),
          h("p", { class: "hint", id: hintId }, "UTF-8, first line naming the columns ",
            h("code", {}, "email, firstName, lastName"), ", optionally ", h("code", {}, "role"),
            " (ADMIN or MEMBER) and ", h("code", {}, "qualification"), "."),
          fileInput),
        alert, preview, progress, summary, results,
        h("div", { class: "dialog-actions" },
          h("button", { type: "button", class: "button secondary", onclick: close }, "Close"),
          send));

      let parsed = null; // the rows of the chosen file
      let outcomes = new Map(); // line → {ok, text}
      let next = 0; // index in the valid rows of the first batch not sent yet

      const showAlert = (message, ...extra) => {
        replace(alert, message, ...extra);
        alert.hidden = !message;
      };

      fileInput.addEventListener("change", async () => {
        showAlert("");
        parsed = null;
        outcomes = new Map();
        next = 0;
        preview.hidden = true;
        results.hidden = true;
        replace(summary);
        replace(progress);
        send.disabled = true;
        const [file] = fileInput.files;
        if (!file) return;
        let found;
        try {
          found = parseUsersCsv(await readText(file));
        } catch (error) {
          showAlert(error.message);
          fileInput.focus();
          return;
        }
        if (found.fileError) {
          showAlert(found.fileError);
          fileInput.focus();
          return;
        }
        parsed = found;
        renderPreview();
      });

      function validRows() {
        return parsed.rows.filter((row) => row.input);
      }

      function renderPreview() {
        const { rows, ignored } = parsed;
        const valid = validRows().length;
        const problems = rows.length - valid;
        const shown = rows.slice(0, PREVIEW_ROWS);
        replace(preview,
          h("h3", { id: `${inputId}-preview` }, "Preview"),
          h("p", {}, `${plural(rows.length, "row", "rows")} read: ${valid.toLocaleString()} ready to send` +
            (problems ? `, ${problems.toLocaleString()} with a problem (not sent)` : "") + "."),
          ignored.length ? h("p", { class: "hint" }, `Ignored columns: ${ignored.join(", ")}.`) : null,
          table("Rows of the file", ["Line", "Email", "Name", "Role", "Qualification"],
            shown.map((row) => h("tr", {},
              cell("Line", String(row.line)),
              cell("Email", h("span", { class: "email" }, row.input?.email ?? row.email ?? "")),
              row.input
                ? [cell("Name", `${row.input.firstName} ${row.input.lastName}`.trim()),
                  cell("Role", ROLE_LABELS[row.input.role] ?? row.input.role),
                  cell("Qualification", row.input.qualification ?? "—")]
                : h("td", { colspan: "3", "data-label": "Problem", class: "bulk-problem" },
                  row.problem)))),
          rows.length > shown.length
            ? h("p", { class: "hint" }, `Showing the first ${PREVIEW_ROWS} of ${rows.length.toLocaleString()} rows.`)
            : null);
        preview.hidden = false;
        replace(send, valid ? `Send ${plural(valid, "invitation", "invitations")}` : "Send invitations");
        send.disabled = valid === 0;
      }

      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        if (!parsed) return;
        const rows = validRows();
        busy(send, true);
        fileInput.disabled = true;
        showAlert("");
        let stopped = null;
        while (next < rows.length) {
          const batch = rows.slice(next, next + BATCH_SIZE);
          replace(progress, `Sending ${(next + batch.length).toLocaleString()} of ` +
            `${plural(rows.length, "invitation", "invitations")}…`);
          try {
            const { data } = await call("ConsoleInviteUsers", { inputs: batch.map((row) => row.input) });
            const payload = data.inviteUsers;
            batch.forEach((row, index) => {
              const refusal = payload.errors[0] ?? payload.results[index]?.errors[0];
              outcomes.set(row.line, refusal
                ? { ok: false, text: `${refusal.message} (${refusal.code})` }
                : { ok: true, text: "Invited" });
            });
            next += batch.length;
          } catch (error) {
            if (ctx.handled(error)) return;
            stopped = error;
            break;
          }
        }
        replace(progress);
        fileInput.disabled = false;
        renderResults();
        if (stopped) {
          showAlert(`${errorMessage(stopped)} ${plural(rows.length - next, "row was", "rows were")} not sent. `,
            h("button", { type: "submit", class: "button secondary small" }, "Send the rest"));
          busy(send, false);
          send.disabled = true;
        } else {
          busy(send, false);
          send.disabled = true;
          replace(send, "Sent");
        }
        sent = summaryText();
        results.querySelector("h3")?.focus();
      });

      function counts() {
        let invited = 0;
        let refused = 0;
        for (const outcome of outcomes.values()) {
          if (outcome.ok) invited += 1;
          else refused += 1;
        }
        const notSent = parsed.rows.filter((row) => !row.input).length;
        return { invited, refused, notSent };
      }

      function summaryText() {
        const { invited, refused, notSent } = counts();
        const parts = [`${plural(invited, "invitation", "invitations")} sent`];
        if (refused) parts.push(`${refused.toLocaleString()} refused`);
        if (notSent) parts.push(`${notSent.toLocaleString()} not sent (a problem in the file)`);
        return `Bulk invite: ${parts.join(", ")}.`;
      }

      function renderResults() {
        const rows = parsed.rows.map((row) => {
          if (!row.input) return { line: row.line, email: row.email ?? "", ok: false, text: `Not sent: ${row.problem}` };
          const outcome = outcomes.get(row.line);
          return outcome ? { line: row.line, email: row.input.email, ...outcome } : null;
        }).filter(Boolean);
        // A long file lists only the rows not invited (those need a look).
        const long = rows.length > RESULT_ROWS;
        const listed = long ? rows.filter((row) => !row.ok) : rows;
        replace(summary, summaryText());
        replace(results,
          h("h3", { id: `${inputId}-results`, tabindex: "-1" }, "Results"),
          table("Result of each row", ["Line", "Email", "Result"],
            listed.slice(0, RESULT_ROWS).map((row) => h("tr", { class: row.ok ? "bulk-ok" : "bulk-refused" },
              cell("Line", String(row.line)),
              cell("Email", h("span", { class: "email" }, row.email)),
              cell("Result", h("span", { class: row.ok ? "status status-enabled" : "bulk-problem" }, row.text))))),
          long
            ? h("p", { class: "hint" }, "Only the rows not invited are listed" +
              (listed.length > RESULT_ROWS
                ? `, the first ${RESULT_ROWS.toLocaleString()} of ${listed.length.toLocaleString()}.`
                : "."))
            : null);
        results.hidden = false;
      }
      return form;
    },
  });
  dialog.addEventListener("close", () => {
    if (sent) done(sent);
  });
}
