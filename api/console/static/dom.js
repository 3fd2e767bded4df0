// Small DOM helpers: elements, icons, forms with errors at their fields, and
// modal dialogs (<dialog>: focus stays inside, Escape closes).
import { ApiError } from "./api.js";

const PROPERTIES = new Set(["value", "checked", "disabled", "hidden", "open"]);

export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      element.className = value;
    } else if (PROPERTIES.has(key)) {
      element[key] = value;
    } else {
      element.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
}

export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

const SVG = "http://www.w3.org/2000/svg";
const ICONS = {
  close: "M6 6l12 12M18 6L6 18",
  up: "M12 19V5M5 12l7-7 7 7",
  edit: "M4 20h4L19 9l-4-4L4 16v4zM13.5 6.5l4 4",
  history: "M12 7v5l3 2M3.5 12a8.5 8.5 0 1 0 2.5-6M3 4v4h4",
};

export function icon(name) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "18");
  svg.setAttribute("height", "18");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", "icon");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", ICONS[name]);
  svg.append(path);
  return svg;
}

let counter = 0;
export function uid(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
}

// A labelled field; its error (if any) is shown under it and announced.
export function field({ label, name, type = "text", value = "", required = false, hint, options,
  autocomplete, min, max, maxlength, inputmode }) {
  const id = uid(`field-${name}`);
  const errorId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : null;
  let control;
  if (options) {
    control = h("select", { id, name },
      options.map(([optionValue, text]) =>
        h("option", { value: optionValue, selected: optionValue === value }, text)));
  } else {
    control = h("input", { id, name, type, value, required, autocomplete, min, max, maxlength,
      inputmode });
  }
  control.setAttribute("aria-describedby", [hintId, errorId].filter(Boolean).join(" "));
  return h("div", { class: "field", "data-field": name },
    h("label", { for: id }, label),
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    control,
    h("p", { class: "field-error", id: errorId, hidden: true }));
}

export function formAlert() {
  return h("div", { class: "form-alert", role: "alert", hidden: true });
}

export function clearErrors(form) {
  for (const wrapper of form.querySelectorAll(".field")) {
    const error = wrapper.querySelector(".field-error");
    error.hidden = true;
    error.textContent = "";
    wrapper.querySelector("input, select, textarea")?.removeAttribute("aria-invalid");
  }
  const alert = form.querySelector(".form-alert");
  if (alert) {
    alert.hidden = true;
    alert.textContent = "";
  }
}

// Shows a refusal where it belongs: at the field it names, else above the form.
export function showError(form, { field: name, message }) {
  const wrapper = name ? form.querySelector(`.field[data-field="${CSS.escape(name)}"]`) : null;
  if (wrapper) {
    const error = wrapper.querySelector(".field-error");
    error.textContent = message;
    error.hidden = false;
    const control = wrapper.querySelector("input, select, textarea");
    control?.setAttribute("aria-invalid", "true");
    control?.focus();
    return;
  }
  const alert = form.querySelector(".form-alert");
  alert.textContent = message;
  alert.hidden = false;
}

export function errorMessage(error) {
  if (error instanceof ApiError) {
    if (error.code === "SERVICE_UNAVAILABLE") return error.message;
    return error.requestId ? `${error.message} (request ${error.requestId})` : error.message;
  }
  return "Something went wrong. Try again.";
}

// A modal dialog built from `content` (a function of the dialog's close()).
// Escape and "Cancel" close it; focus returns to whatever opened it.
export function openDialog({ title, describe, content, className = "" }) {
  const titleId = uid("dialog-title");
  const opener = document.activeElement;
  const dialog = h("dialog", { class: `dialog ${className}`.trim(), "aria-labelledby": titleId });
  const close = () => dialog.close();
  const body = content(close);
  const heading = h("h2", { id: titleId }, title);
  let description = null;
  if (describe) {
    const describeId = uid("dialog-description");
    description = h("p", { id: describeId }, describe);
    dialog.setAttribute("aria-describedby", describeId);
  }
  replace(dialog, h("div", { class: "dialog-head" }, heading), description, body);
  dialog.addEventListener("close", () => {
    dialog.remove();
    if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
  const first = dialog.querySelector("[autofocus], input:not([type=hidden]), select, textarea");
  (first ?? dialog.querySelector("button"))?.focus();
  return { dialog, close };
}

export function busy(button, isBusy) {
  button.disabled = isBusy;
  button.setAttribute("aria-busy", isBusy ? "true" : "false");
}
