// Money and dates, formatted at the edge (amounts stay integers in minor units).
const locale = navigator.language || "en-US";

export function money(minorUnits, currency) {
  const format = new Intl.NumberFormat(locale, { style: "currency", currency });
  const digits = format.resolvedOptions().maximumFractionDigits;
  return format.format(Number(minorUnits) / 10 ** digits);
}

const dateFormat = new Intl.DateTimeFormat(locale, { dateStyle: "medium" });
const dateTimeFormat = new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" });

export function date(iso) {
  return iso ? dateFormat.format(new Date(iso)) : "—";
}

export function dateTime(iso) {
  return iso ? dateTimeFormat.format(new Date(iso)) : "—";
}

export function plural(count, one, many) {
  return `${count.toLocaleString(locale)} ${count === 1 ? one : many}`;
}

export const ROLE_LABELS = { OWNER: "Owner", ADMIN: "Admin", MEMBER: "Member" };
export const STATUS_LABELS = { INVITED: "Invited", ENABLED: "Enabled", DISABLED: "Disabled" };
